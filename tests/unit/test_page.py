"""A run's HTML page (halab.prove.page), opened in a real browser: headless Chromium loads it
with no console message, and its rendered DOM holds the run's tables, pictures and links."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from halab import paths, spec
from halab.prove import page, report
from halab.prove.results import ScenarioRun
from tests.unit.test_session import _probe_answers, _quick, measured_with_a_failed_restart

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (./bootstrap installs it)")
# Every fetch fails (the page must need none), and a browser as root needs --no-sandbox.
BROWSER = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--enable-logging=stderr",
    "--log-level=0",
]


class Dom(HTMLParser):
    """What a test reads of a rendered page: each table's rows (by the table's id), the
    pictures' sources, the links, the elements seen by id and the scripts."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.links: list[str] = []
        self.ids: dict[str, str] = {}
        self.scripts = 0
        self._table = ""
        self._cell: list[str] | None = None
        self._id = ""
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self._id = found.get("id") or self._id
        if tag == "table":
            self._table = found.get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr":
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(found.get("src") or "")
        elif tag == "a":
            self.links.append(found.get("href") or "")
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._id and data.strip():
            self.ids.setdefault(self._id, data.strip())


def rendered(target: Path) -> tuple[Dom, list[str]]:
    """The page as Chromium rendered it, and every console message it logged."""
    result = subprocess.run(
        [str(CHROMIUM), *BROWSER, "--dump-dom", target.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return Dom(result.stdout), [line for line in result.stderr.splitlines() if ":CONSOLE" in line]


def _failover_run(memory_provider, fake_ssh, monkeypatch) -> tuple[list[ScenarioRun], Path]:
    """A session's failover run as test.failover makes it: a passing scenario, one whose node
    never came back (ERROR), one never run; its folder holds the JSON, the PNGs, the logs and the page."""
    _quick(monkeypatch)
    _probe_answers(fake_ssh)

    runs = measured_with_a_failed_restart(memory_provider, monkeypatch)
    return runs, paths.LabPaths("seed").latest.resolve()


@needs_chromium
def test_a_failover_runs_page_renders_its_table_pictures_and_logs(memory_provider, fake_ssh, monkeypatch, capsys):
    runs, run = _failover_run(memory_provider, fake_ssh, monkeypatch)
    target = run / paths.REPORT
    assert f"report: {target}" == capsys.readouterr().out.splitlines()[-1]  # what the task prints last

    dom, console = rendered(target)

    assert console == []
    assert dom.scripts == 0 and dom.ids["outcome"] == "FAILED"
    table = dom.tables["failover-table"]
    assert table[0] == list(report.COLUMNS)
    assert [row[:2] + row[-2:] for row in table[1:]] == [
        ["quiet", "wait", "within", ""],
        ["restart-fails", "crash server3", "within", ""],
        ["restart-fails", "restart server3", "ERROR", ""],
    ]
    assert table[1:] == [list(row) for row in report.rows(runs)]  # every column the terminal leaves out too
    assert dom.tables["versions"][1:] == [
        [name, version] for name, version in spec.load().versions.model_dump().items()
    ]
    assert len(dom.images) == 3 and all(src.startswith("data:image/png;base64,") for src in dom.images)  # no fetch
    logs = [link for link in dom.links if link.startswith("nodes/")]
    assert "nodes/server3/keepalived.log" in logs and all((run / link).is_file() for link in logs)
    assert all(link.startswith(("#", "nodes/")) for link in dom.links), dom.links


@needs_chromium
def test_the_page_screenshots_as_a_picture_with_content(memory_provider, fake_ssh, monkeypatch, tmp_path):
    from matplotlib import image

    _, run = _failover_run(memory_provider, fake_ssh, monkeypatch)
    shot = tmp_path / "page.png"
    subprocess.run(
        [str(CHROMIUM), *BROWSER, "--window-size=1300,1600", f"--screenshot={shot}", (run / paths.REPORT).as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = image.imread(shot)
    assert pixels.shape[:2] == (1600, 1300) and pixels.std() > 0.05  # a page, not a blank or error screen


@needs_chromium
def test_acceptance_checks_show_their_packets_and_hostile_text_stays_text(home, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    packets = {"requests_to": {"aa:03": 6}, "replies_from": {"aa:01": 3, "aa:02": 3}}
    tests = [
        {
            "test": "test_cluster.py::test_replies_bypass_the_director",
            "outcome": "passed",
            "seconds": 4.2,
            "packets": packets,
        },
        {
            "test": "test_cluster.py::test_vip_on_master",
            "outcome": "failed",
            "seconds": 0.5,
            "message": "<script>alert(1)</script><img src=http://example.com/x.png>",
        },
        {
            "test": "test_cluster.py::test_keepalived_config_is_clean_on_every_director",
            "outcome": "passed",
            "seconds": 0.3,
            "warnings": {"server3": ["Unknown keyword 'nb_get_retry'", "<b>not bold</b>"]},
        },
    ]
    (run / "acceptance.json").write_text(json.dumps({"passed": False, "tests": tests}))

    dom, console = rendered(page.write(spec.load(), run, "acceptance", False))

    assert console == [] and dom.scripts == 0 and dom.images[1:] == []  # the topology only: the message is text
    assert [row[:2] for row in dom.tables["acceptance-table"]] == [
        ["check", "outcome"],
        ["test_replies_bypass_the_director", "passed"],
        ["test_vip_on_master", "failed"],
        ["test_keepalived_config_is_clean_on_every_director", "passed"],
    ]
    complaints = dom.tables["acceptance-table"][3][3]  # an imported file's: shown, as text
    assert "warnings (2)" in complaints and "server3: Unknown keyword 'nb_get_retry'" in complaints
    assert "server3: <b>not bold</b>" in complaints
    evidence = dom.tables["acceptance-table"][1][3]
    assert '"requests_to"' in evidence and '"aa:03": 6' in evidence
    assert "<script>alert(1)</script>" in dom.tables["acceptance-table"][2][3]
    assert "failover-table" not in dom.tables and "not run" not in dom.ids.values()
