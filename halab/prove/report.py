"""Failover results for people and for machines: a table, JSON, JUnit XML and PNG timelines.

Written into the lab's artifacts directory, so a CI system can show the JUnit file, an
operator can read the table, and the publish step (issue 8) can find the verdict.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from halab.prove import established, verdicts
from halab.prove.findings import Finding
from halab.prove.results import NOISE, NOT_EXERCISED, WITHIN, PhaseResult, ScenarioRun

# "longest gap ms": the longest wait between two answers (what one polling user saw);
# "failing for ms": from the fault to the end of the last failed request (what every
# user sent to the dead path saw); "limit ms": the bound plus the margin, the longest gap
# that passes. "verdict": "within" the protocol bound (to the probe's resolution), "noise +N ms" over it
# but inside the noise margin (a pass, said as such), "NOT EXERCISED" (the traffic never met
# the fault: no verdict at all), or FAIL; "finding": [n] when a configuration change
# would shorten the phase (the numbered findings under the table say which).
# "conns survived": the probe's held keep-alive connections established when the phase began
# that kept flowing through it; "stall ms": the longest wait for a reply on one of them.
INTERRUPTED = (
    "interrupted during {}: its phases were not recorded, and the lab may be left mid-fault "
    "(`invoke lab.status`; `invoke fault.restart NODE` or `invoke lab.down`)"
)
COLUMNS = (
    "scenario",
    "phase",
    "longest gap ms",
    "failing for ms",
    "failed",
    "bound ms",
    "limit ms",
    "conns survived",
    "stall ms",
    "VIP moved",
    "verdict",
    "finding",
)


def _moved(phase: PhaseResult) -> str:
    """Where the VIP went as the client saw it, and with NAT the gateway as a real server saw it."""
    moves = [f"{m['to']} at +{(m['at'] - phase.start) * 1000:.0f} ms" for m in phase.vip_moves]
    moves += [f"gateway {m['to']} at +{(m['at'] - phase.start) * 1000:.0f} ms" for m in phase.gateway_moves]
    return ", ".join(moves) or "-"


def _marks(runs: list[ScenarioRun], found: list[Finding]) -> dict[tuple[str, str], str]:
    """(scenario, phase) -> its findings' numbers, "[1]" or "[1,2]"."""
    numbers: dict[tuple[str, str], list[str]] = {}
    for number, finding in enumerate(found, 1):
        numbers.setdefault((finding.scenario, finding.phase), []).append(str(number))
    return {key: f"[{','.join(value)}]" for key, value in numbers.items()}


def _verdict(phase: PhaseResult) -> str:
    """The verdict column: "within" the bound, "noise +N ms" (over it, inside the margin),
    "NOT EXERCISED" (accepted: "not exercised"), "FAIL"."""
    if phase.verdict == NOISE:
        return f"noise +{phase.over_ms} ms"
    if phase.verdict == NOT_EXERCISED:
        return "not exercised" if phase.passed else "NOT EXERCISED"
    return "within" if phase.verdict == WITHIN else "FAIL"


def rows(runs: list[ScenarioRun], found: list[Finding] | None = None) -> list[tuple[str, ...]]:
    """One row per phase measured; a scenario that raised adds a row for the step that did (ERROR)."""
    marks = _marks(runs, found or [])
    lines: list[tuple[str, ...]] = []
    for run in runs:
        lines += [
            (
                run.scenario,
                phase.phase,
                str(phase.outage_ms),
                str(phase.failing_ms) if phase.failed else "-",
                str(phase.failed),
                str(phase.bound_ms),
                str(phase.limit_ms),
                phase.connections,
                str(phase.longest_stall_ms) if phase.held else "-",
                _moved(phase),
                _verdict(phase),
                marks.get((run.scenario, phase.phase), ""),
            )
            for phase in run.phases
        ]
        if run.error:
            lines.append((run.scenario, run.failed_step, *["-"] * (len(COLUMNS) - 4), "ERROR", ""))
    return lines


def table(
    runs: list[ScenarioRun], found: list[Finding] | None = None, not_run: list[str] | None = None, interrupted: str = ""
) -> str:
    """A plain-text table, one line per phase, then the reasons of every failed phase, the
    error of a scenario that raised, the one an interruption cut short and the scenarios that
    were not run after it."""
    lines = [COLUMNS, *rows(runs, found)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    for run in runs:
        for phase in run.phases:
            text += [f"  {run.scenario} / {phase.phase}: {reason}" for reason in phase.reasons()]
            if phase.verdict == NOT_EXERCISED:
                text.append(f"  {run.scenario} / {phase.phase}: {phase.verdict_text}")
            if phase.verdict == NOISE:
                text.append(
                    f"  {run.scenario} / {phase.phase}: {phase.verdict_text} "
                    f"(outage {phase.outage_ms} ms, bound {phase.bound_ms} ms, margin {phase.margin_ms} ms)"
                )
        if run.error:
            text.append(f"  {run.scenario} / {run.failed_step}: error: {run.error}")
    if interrupted:
        text.append(f"  {INTERRUPTED.format(interrupted)}")
    if not_run:
        text.append(f"  not run (the run stopped before them): {', '.join(not_run)}")
    return "\n".join(text)


def findings_text(found: list[Finding]) -> str:
    """The numbered findings the table's last column points to ("" when there are none)."""
    if not found:
        return ""
    lines = ["Findings (the verdict is against the protocol bound; these say what a setting would change):"]
    return "\n".join(lines + [f"  [{n}] {finding.sentence()}" for n, finding in enumerate(found, 1)])


def split_text(runs: list[ScenarioRun]) -> str:
    """Each phase's split-brain figures, one line per VIP ("" when no phase observed them)."""
    lines = []
    for run in runs:
        for phase in run.phases:
            for vip, seen in phase.split.items():
                lines.append(f"  {run.scenario} / {phase.phase}: {vip} (VRID {seen['vrid']}): {split_line(seen)}")
    return "\n".join(["Split brain, as the directors lived it (ms from each action):", *lines]) if lines else ""


def split_line(seen: dict) -> str:
    """One VIP's figures in words."""
    heard = "; ".join(
        f"{who} {', '.join(f'{n} from {src}' for src, n in sorted(sources.items())) or 'none'}"
        for who, sources in seen["adverts"].items()
    )
    return (
        f"two MASTERs {seen['dual_ms']} (from {_after(seen['dual_after_ms'])}), {seen['takeovers']} takeover(s), "
        f"one MASTER for good {_after(seen['single_ms'])}, client ARP on it {_after(seen['arp_ms'])}"
        + (f"; adverts {heard}" if heard else "")
    )


def _after(ms: int | None) -> str:
    return "never" if ms is None else f"+{ms}"


def write_json(
    runs: list[ScenarioRun], lab: str, path: Path, found: list[Finding] | None = None, context: dict | None = None
) -> Path:
    """Every request and verdict, the findings, and the run's context (versions used, the lab's settings)."""
    data = {
        "lab": lab,
        "passed": all(run.passed for run in runs)
        and not (context or {}).get("not_run")
        and not (context or {}).get("interrupted"),
        **(context or {}),
        "findings": [finding.as_dict() for finding in found or []],
        "scenarios": [run.as_dict() for run in runs],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


def write_junit(
    runs: list[ScenarioRun], lab: str, path: Path, found: list[Finding] | None = None, context: dict | None = None
) -> Path:
    """One testcase per phase (classname: the scenario), failures carrying their reasons, findings
    in the phase's output; the versions used as the suite's properties."""
    phases = [(run, phase) for run in runs for phase in run.phases]
    errors = [run for run in runs if run.error]
    not_run = (context or {}).get("not_run", [])
    interrupted = (context or {}).get("interrupted", "")
    suites = ET.Element("testsuites", name="halab")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"failover[{lab}]",
        tests=str(len(phases) + len(errors) + len(not_run) + bool(interrupted)),
        failures=str(sum(not phase.passed for _, phase in phases)),
        errors=str(len(errors) + bool(interrupted)),
        skipped=str(len(not_run)),
    )
    properties = ET.SubElement(suite, "properties")
    for name, version in (context or {}).get("versions", {}).items():
        ET.SubElement(properties, "property", name=f"version.{name}", value=version)
    for number, note in enumerate((context or {}).get("substitutions", []), 1):
        ET.SubElement(properties, "property", name=f"substitution.{number}", value=note)
    for run, phase in phases:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"failover.{run.scenario}",
            name=phase.phase,
            time=f"{phase.end - phase.start:.3f}",
        )
        summary = (
            f"outage {phase.outage_ms} ms, {phase.failed} failed requests, bound {phase.bound_ms} ms "
            f"({phase.basis}), margin {phase.margin_ms} ms, connections survived {phase.connections}, "
            f"longest stall {phase.longest_stall_ms} ms (stall bound {phase.stall_bound_ms} ms), "
            f"VIP moved: {_moved(phase)}; verdict: {phase.verdict_text}"
        )
        if phase.transitions is not None:
            summary += f", VRRP transitions {phase.transitions}"
        notes = [
            f"finding: {f.sentence()}" for f in found or [] if (f.scenario, f.phase) == (run.scenario, phase.phase)
        ]
        if not phase.passed:
            ET.SubElement(case, "failure", message="; ".join(phase.reasons()) or phase.verdict_text).text = summary
        ET.SubElement(case, "system-out").text = "\n".join([summary, *notes])
    for run in errors:
        case = ET.SubElement(suite, "testcase", classname=f"failover.{run.scenario}", name=run.failed_step)
        ET.SubElement(case, "error", message=run.error).text = run.error
    if interrupted:
        case = ET.SubElement(suite, "testcase", classname=f"failover.{interrupted}", name="interrupted")
        ET.SubElement(case, "error", message=INTERRUPTED.format(interrupted))
    for name in not_run:
        case = ET.SubElement(suite, "testcase", classname=f"failover.{name}", name="not run")
        ET.SubElement(case, "skipped", message="not run: the run stopped before it (an error or an interruption)")
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="unicode", xml_declaration=True)
    return path


def plot(run: ScenarioRun, path: Path) -> Path:
    """The scenario's timeline: each request's latency by the server that answered, failures
    marked, each action's failure window (bound + margin) shaded, and the VIP's moves as the client saw them."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(11, 4.2), dpi=100)
    pages = sorted({r.get("page", "") for r in run.requests if r["ok"]})
    for index, page in enumerate(pages):
        points = [r for r in run.requests if r["ok"] and r.get("page") == page]
        axes.scatter(
            [r["sent"] for r in points],
            [(r["done"] - r["sent"]) * 1000 for r in points],
            s=6,
            label=_server(page),
            color=f"C{index}",
        )
    failed = [r for r in run.requests if not r["ok"]]
    axes.scatter(
        [r["sent"] for r in failed],
        [(r["done"] - r["sent"]) * 1000 for r in failed],
        marker="x",
        s=14,
        color="red",
        label=f"failed ({len(failed)})",
    )
    for number, connection in enumerate(run.connections):
        for start, end in established.stalls(connection):  # one line per held connection, high up
            axes.plot([start, end], [5000 + 200 * number] * 2, color="darkred", linewidth=1.5)
    for number, phase in enumerate(run.phases):
        first = number == 0  # one legend entry for each kind of mark
        axes.axvline(phase.start, color="black", linewidth=1)
        if phase.bound_ms:
            bound_end = phase.start + phase.bound_ms / 1000
            axes.axvline(bound_end, color="green", linestyle="--", linewidth=1, label="bound" if first else None)
        axes.annotate(
            phase.phase,
            (phase.start, 1.0),
            xycoords=("data", "axes fraction"),
            rotation=90,
            va="top",
            ha="right",
            fontsize=8,
        )
        if phase.split:
            axes.annotate(
                "; ".join(f"two MASTERs {seen['dual_ms']} ms" for seen in phase.split.values()),
                (phase.start, 0.02),
                xycoords=("data", "axes fraction"),
                fontsize=8,
                color="firebrick",
            )
        window = "failure window (bound + margin)" if first else None
        axes.axvspan(phase.start, phase.window_end, color="orange", alpha=0.12, label=window)
        for move in phase.vip_moves:
            axes.axvline(move["at"], color="purple", linestyle=":", linewidth=1)
            axes.annotate(
                f"{move['vip']} -> {move['to']}",
                (move["at"], 0.5),
                xycoords=("data", "axes fraction"),
                rotation=90,
                va="center",
                ha="left",
                fontsize=8,
                color="purple",
            )
    axes.set_yscale("symlog", linthresh=10)
    axes.set_ylim(bottom=0)
    if run.requests:  # the probe's span and the actions in it, not matplotlib's margins around every mark
        starts = [phase.start for phase in run.phases]
        left = min([r["sent"] for r in run.requests] + starts)
        axes.set_xlim(left - 0.5, max([r["done"] for r in run.requests] + starts) + 0.5)
    axes.set_xlabel("seconds since the probe started")
    axes.set_ylabel("response time, ms")
    verdicts_seen = ", ".join(dict.fromkeys(_verdict(phase) for phase in run.phases)) or "no phase"
    title = f"{run.scenario}: {run.description}  ({verdicts_seen})"
    if run.connections:
        title += "\ndark red, at the top: each held connection's stalls"
    axes.set_title(title, fontsize=10)
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    pyplot.close(figure)
    return path


def _server(page: str) -> str:
    """The server a page names (`<h1>server1's page</h1>` -> server1); the page itself otherwise."""
    return verdicts.server_of(page) or page[:30]
