"""Failover results for people and for machines: a table, JSON, JUnit XML and PNG timelines.

Written into the lab's artifacts directory, so a CI system can show the JUnit file, an
operator can read the table, and the publish step (issue 8) can find the verdict.
"""

from __future__ import annotations

import io
import json
import re
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from halab import environment
from halab.prove import established, notify, verdicts
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


def interrupted_text(scenario: str) -> str:
    """What an interruption during scenario lost, and how to recover the lab, as the user runs tasks."""
    run = environment.launcher()
    return (
        f"interrupted during {scenario}: its phases were not recorded, and the lab may be left mid-fault "
        f"(`{run} lab.status`; `{run} fault.restart NODE` or `{run} lab.down`)"
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


# What XML 1.0 cannot carry (C0 controls but tab, newline and carriage return; lone
# surrogates; U+FFFE and U+FFFF), and what a terminal would act on rather than show (every
# C0 and C1 control and DEL). Node stderr, an HTTP status line or an exception's text may
# hold any of them; the reports show each as \xNN (\uNNNN beyond a byte) instead.
NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
NOT_PRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def escaped(text: str, unsafe: re.Pattern[str] = NOT_PRINTABLE) -> str:
    """text with every character `unsafe` matches written as \\xNN (or \\uNNNN)."""
    return unsafe.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


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


WIDTH = 120  # the widest a terminal table or its notes may print: a split screen, a CI log view
# The terminal's columns and their headers, broken over lines: the JSON (--format json) and the
# HTML page keep every one of COLUMNS; "limit ms" is said once, in the margin line under the table.
SHOWN = {
    "scenario": "scenario",
    "phase": "phase",
    "longest gap ms": "longest\ngap ms",
    "failing for ms": "failing\nfor ms",
    "failed": "failed",
    "bound ms": "bound\nms",
    "conns survived": "conns\nkept",
    "stall ms": "stall\nms",
    "VIP moved": "VIP moved\nto, +ms",
    "verdict": "verdict",
    "finding": "finding",
}
MOVE_WIDTH = 18  # "gw server4 +12345" on one line
# The phase wraps within this width, so the finding marks keep theirs: rich cut them short
# ("[1,2" for "[1,2]") in a demo's table otherwise.
PHASE_WIDTH = 11
NUMERIC = ("longest gap ms", "failing for ms", "failed", "bound ms", "conns survived", "stall ms")
# Plain dashes under the header when the output is not a terminal (a CI log, a file).
PLAIN = box.Box("    \n    \n -- \n    \n    \n -- \n    \n    \n", ascii=True)
STYLES = {"within": "green", "noise": "yellow", "not": "yellow", "NOT": "bold red", "FAIL": "bold red"}


def table(
    runs: list[ScenarioRun],
    found: list[Finding] | None = None,
    not_run: list[str] | None = None,
    interrupted: str = "",
    terminal: bool = False,
) -> str:
    """The failover table in at most WIDTH columns, one row per phase (cells wrap), then the
    notes: the reasons of every failed phase, the error of a scenario that raised, the one an
    interruption cut short and the scenarios not run after it. terminal: colour and box
    lines; otherwise plain text for logs."""
    grid = Table(box=box.SIMPLE if terminal else PLAIN, padding=(0, 1, 0, 0), show_edge=False)
    for column, header in SHOWN.items():
        whole = column in NUMERIC or column in ("scenario", "finding")  # never broken: the phase and moves wrap
        grid.add_column(
            header,
            justify="right" if column in NUMERIC else "left",
            overflow="fold",
            no_wrap=whole,
            min_width=MOVE_WIDTH if column == "VIP moved" else None,
            max_width=PHASE_WIDTH if column == "phase" else None,
        )
    everything = rows(runs, found)
    for index, line in enumerate(everything):
        cells = {name: escape(escaped(cell)) for name, cell in zip(COLUMNS, line, strict=True)}
        cells["VIP moved"] = _short_moves(cells["VIP moved"])
        if terminal:
            cells["verdict"] = f"[{STYLES.get(line[-2].split(' ')[0], 'default')}]{cells['verdict']}[/]"
        last = index + 1 == len(everything) or everything[index + 1][0] != line[0]
        grid.add_row(*(cells[name] for name in SHOWN), end_section=last)
    out = Console(file=io.StringIO(), width=WIDTH, force_terminal=terminal, no_color=not terminal, highlight=False)
    out.print(grid)
    for note in notes(runs, not_run or [], interrupted):
        out.print(escape(escaped(note)), overflow="fold", highlight=False)
    text = out.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in text.rstrip().splitlines())


def notes(runs: list[ScenarioRun], not_run: list[str], interrupted: str) -> list[str]:
    """What the table's cells cannot hold, one line each: why a phase failed, was not exercised
    or passed as noise; a scenario's error; the interruption and what was not run."""
    text = []
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
        text.append(f"  {interrupted_text(interrupted)}")
    if not_run:
        text.append(f"  not run (the run stopped before them): {', '.join(not_run)}")
    return text


def _short_moves(moved: str) -> str:
    """ "server4 at +1234 ms, gateway server4 at +1300 ms" -> one move a line, in the column's
    unit: "server4 +1234", "gw server4 +1300"."""
    return moved.replace(" at +", " +").replace(" ms", "").replace("gateway ", "gw ").replace(", ", "\n")


def notify_text(runs: list[ScenarioRun]) -> str:
    """The notify stream against the VIP moves, per phase that had either ("" when none had)."""
    lines = [
        f"  {run.scenario} / {phase.phase}: {text}"
        for run in runs
        for phase in run.phases
        if (text := notify.summary(phase.notify, phase.start))
    ]
    return (
        "\n".join(["Notify stream (keepalived's state changes against the VIP moves the client saw):", *lines])
        if lines
        else ""
    )


def findings_text(found: list[Finding]) -> str:
    """The numbered findings the table's last column points to ("" when there are none)."""
    if not found:
        return ""
    lines = ["Findings (the verdict is against the protocol bound; these say what a setting would change):"]
    for n, finding in enumerate(found, 1):
        sentence = escaped(f"  [{n}] {finding.sentence()}")
        lines.append(textwrap.fill(sentence, WIDTH, subsequent_indent=" " * 6, break_on_hyphens=False))
    return "\n".join(lines)


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
        f"two MASTERs {seen['dual_ms']} (from {_after(seen['dual_after_ms'])}), {seen['takeovers']} takeover(s)"
        + (f" ({seen['heard_takeovers']} by adverts)" if "heard_takeovers" in seen else "")
        + f", one MASTER for good {_after(seen['single_ms'])}, client ARP on it {_after(seen['arp_ms'])}"
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
        ET.SubElement(case, "error", message=interrupted_text(interrupted))
    for name in not_run:
        case = ET.SubElement(suite, "testcase", classname=f"failover.{name}", name="not run")
        ET.SubElement(case, "skipped", message="not run: the run stopped before it (an error or an interruption)")
    _well_formed(suites)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="unicode", xml_declaration=True)
    return path


def _well_formed(root: ET.Element) -> None:
    """Every text and attribute of the tree made XML 1.0 characters (ElementTree escapes
    markup but writes a control character as it is, and no parser reads the file back)."""
    for element in root.iter():
        element.text = escaped(element.text, NOT_XML) if element.text else element.text
        element.tail = escaped(element.tail, NOT_XML) if element.tail else element.tail
        for key, value in element.attrib.items():
            element.set(key, escaped(value, NOT_XML))


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
