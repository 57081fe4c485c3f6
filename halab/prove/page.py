"""One run as one HTML page: what broke, when and why, in a file a person can open and share.

A run leaves its results scattered over a folder (JSON, JUnit XML, PNG timelines, each
node's logs); the page gathers them: the lab (its drawing, the versions used and any
substitution), the acceptance checks with the packets they judged, the failover table with
each scenario's timeline, the findings, and relative links to the node logs beside it. It is
made from the run folder's files alone, so any run's page can be made again, and it is
self-contained (pictures as data URIs, no script, no fetch): it is opened from CI artifacts
and on air-gapped hosts.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote

import jinja2

from halab import paths
from halab.prove import report, topology
from halab.prove.findings import Finding
from halab.prove.results import ScenarioRun
from halab.spec import Lab

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("halab", "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=True,  # every value is the lab file's or a node's output: hostile text, never markup
    trim_blocks=True,
    lstrip_blocks=True,
)
# A verdict cell's look: the first word of the terminal table's verdict.
LOOKS = {"within": "ok", "noise": "noise", "not": "noise", "NOT": "bad", "FAIL": "bad", "ERROR": "bad"}


def write(lab: Lab, run: Path, what: str, passed: bool, substitutions: list[str] | None = None) -> Path:
    """Draw the lab into the run folder, then write the page there (paths.REPORT)."""
    topology.draw(lab, None, run / paths.TOPOLOGY)
    target = run / paths.REPORT
    target.write_text(html(lab, run, what, passed, substitutions or []))
    return target


def html(lab: Lab, run: Path, what: str, passed: bool, substitutions: list[str]) -> str:
    """The page for the run folder `run`, from the files found there."""
    failover = _read(run / "failover.json")
    runs = [ScenarioRun.from_dict(scenario) for scenario in failover.get("scenarios", [])]
    found = [Finding(**{k: v for k, v in f.items() if k != "text"}) for f in failover.get("findings", [])]
    context = {
        "what": what,
        "lab": lab,
        "run": run.name,
        "passed": passed,
        "versions": failover.get("versions") or lab.versions.model_dump(),
        "substitutions": failover.get("substitutions") or substitutions,
        "topology": _data_uri(run / paths.TOPOLOGY),
        "acceptance": _acceptance(_read(run / "acceptance.json")),
        "failover": _scenarios(run, runs, found),
        "columns": report.COLUMNS,
        "notes": report.notes(runs, failover.get("not_run", []), failover.get("interrupted", "")),
        "margin": failover.get("margin", ""),
        "findings": [finding.sentence() for finding in found],
        "logs": _logs(run),
    }
    return _ENV.get_template("report.html.j2").render(context)


def look(verdict: str) -> str:
    """The CSS class of a verdict cell: ok, noise (a pass said as such) or bad."""
    return LOOKS.get(verdict.split(" ", 1)[0], "") if verdict else ""


def _scenarios(run: Path, runs: list[ScenarioRun], found: list[Finding]) -> list[dict]:
    """Each scenario: its rows of the failover table and its timeline (when it was drawn)."""
    rows = report.rows(runs, found)
    shown = []
    for scenario in runs:
        own = [row for row in rows if row[0] == scenario.scenario]
        shown.append(
            {
                "name": scenario.scenario,
                "description": scenario.description,
                "passed": scenario.passed,
                "rows": [(row, look(row[report.COLUMNS.index("verdict")])) for row in own],
                "timeline": _data_uri(run / f"failover-{scenario.scenario}.png"),
            }
        )
    return shown


def _acceptance(data: dict) -> list[dict]:
    """Each acceptance check: its name, outcome, time, message, the packets it judged and the
    warnings it passed with (keepalived's complaints about an imported file it runs)."""
    return [
        {
            "name": test["test"].rsplit("::", 1)[-1],
            "outcome": test["outcome"],
            "seconds": test.get("seconds", 0.0),
            "message": test.get("message", ""),
            "packets": json.dumps(test["packets"], indent=1) if "packets" in test else "",
            "warnings": [f"{node}: {line}" for node, lines in test.get("warnings", {}).items() for line in lines],
        }
        for test in data.get("tests", [])
    ]


def _logs(run: Path) -> list[tuple[str, list[tuple[str, str]]]]:
    """(node, [(file, relative link)]) for every node's collected logs."""
    nodes = run / "nodes"
    if not nodes.is_dir():
        return []
    return [
        (node.name, [(file.name, quote(f"nodes/{node.name}/{file.name}")) for file in sorted(node.iterdir())])
        for node in sorted(nodes.iterdir())
        if node.is_dir()
    ]


def _data_uri(picture: Path) -> str:
    """A PNG as a data URI ("" when it was not drawn): the page carries its pictures."""
    if not picture.is_file():
        return ""
    return "data:image/png;base64," + base64.b64encode(picture.read_bytes()).decode()


def _read(path: Path) -> dict:
    """A JSON report of the run, or {} when this run did not write one."""
    return json.loads(path.read_text()) if path.is_file() else {}
