"""Benchmark (not a test): the seed lab's and the fast lab's takeover, side by side.

Boots each lab in turn (local provider, warm builds), runs the keepalived-stop and
director-crash scenarios and the idle soak, tears the lab down, then prints one table:
the outage of a clean stop and of a crash of the MASTER, each with its protocol bound,
how many of the probe's held keep-alive connections survived each and their longest
stall, and the VRRP transitions and failed requests of the idle soak. Every figure is
also in each lab's artifacts (failover.json, failover.xml, the PNG timelines).

    .venv/bin/python bench/failover_compare.py                  # seed and fast, 300 s soak
    .venv/bin/python bench/failover_compare.py --lab labs/fast.yaml --idle 60
    .venv/bin/python bench/failover_compare.py --quick          # the fast lab, 10 s soak: keeps it working
"""

from __future__ import annotations

import argparse
import os

from halab import build, paths, spec
from halab.errors import HalabError
from halab.prove import scenarios, session
from halab.prove.results import PhaseResult, ScenarioRun
from halab.providers.local.provider import LocalProvider

LABS = [paths.LABS / "seed.yaml", paths.LABS / "fast.yaml"]
FAULTS = ("keepalived-stop", "director-crash")
QUICK_IDLE = 10.0


def measure(lab_file: str, idle: float) -> tuple[str, list[ScenarioRun]]:
    """One lab booted, its stop, crash and soak measured, torn down whatever happened."""
    lab = spec.load(lab_file)
    provider = LocalProvider(lab, progress=lambda _: None)
    if provider.running():
        raise SystemExit(f"lab {lab.name!r} is already up; the benchmark boots its own: `invoke lab.down` first")
    try:
        build.ensure_all(lab.versions.model_dump(), progress=lambda _: None)
    except HalabError as exc:
        raise SystemExit(f"cannot build for lab {lab.name!r}: {exc}") from None
    chosen = [s for s in scenarios.scenarios(lab) if s.name in FAULTS] + [scenarios.soak(lab, idle)]
    return lab.name, session.measure(provider, chosen, "always", progress=lambda _: None)


def first(runs: list[ScenarioRun], scenario: str) -> PhaseResult | None:
    """The fault phase of a scenario (its first), if it was measured."""
    run = next((r for r in runs if r.scenario == scenario), None)
    return run.phases[0] if run and run.phases else None


def cells(runs: list[ScenarioRun]) -> list[str]:
    """One lab's column of the comparison."""
    stop, crash, idle = first(runs, "keepalived-stop"), first(runs, "director-crash"), first(runs, "idle")

    def outage(phase: PhaseResult | None) -> str:
        return f"{phase.outage_ms} ms (bound {phase.bound_ms})" if phase else "not measured"

    def held(phase: PhaseResult | None) -> str:
        return f"{phase.connections}, stall {phase.longest_stall_ms} ms" if phase else "not measured"

    soak = f"{idle.transitions} transitions, {idle.failed} failed" if idle else "not measured"
    verdicts = ", ".join(f"{r.scenario} {'pass' if r.passed else 'FAIL'}" for r in runs)
    return [outage(crash), outage(stop), held(crash), held(stop), soak, verdicts]


def comparison(measured: list[tuple[str, list[ScenarioRun]]], idle: float) -> list[str]:
    """The labs side by side: one column per lab, one row per figure."""
    labels = [
        "crash outage",
        "stop outage",
        "conns survived crash",
        "conns survived stop",
        f"idle {idle:g} s",
        "verdicts",
    ]
    columns = [[name, *cells(runs)] for name, runs in measured]
    rows = [["", *(column[0] for column in columns)]] + [
        [label, *(column[i + 1] for column in columns)] for i, label in enumerate(labels)
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab", action="append", help="a lab file (repeat; default: labs/seed.yaml, labs/fast.yaml)")
    parser.add_argument("--idle", type=float, default=300.0, help="seconds of the idle soak (default 300)")
    parser.add_argument("--quick", action="store_true", help=f"the fast lab only, a {QUICK_IDLE:g} s soak")
    args = parser.parse_args()
    os.environ.setdefault("HALAB_NGINX_VERSION", "1.22.1")  # the seed's 1.17.8 is upstream-only
    files = [str(f) for f in ([LABS[1]] if args.quick else args.lab or LABS)]
    idle = QUICK_IDLE if args.quick else args.idle
    measured = [measure(file, idle) for file in files]
    print(f"\nfailover, local lab, {os.cpu_count()} cores (bounds: the protocol's, from each lab file)")
    print("\n".join(comparison(measured, idle)))


if __name__ == "__main__":
    main()
