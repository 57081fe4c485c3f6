"""The notify stream without a lab: the script's lines read back, and each phase's MASTER
events held against the VIP moves the client saw."""

from __future__ import annotations

from halab import paths, spec
from halab.prove import notify, report
from halab.prove.results import ScenarioRun

LOG = """1765040000.100000000 INSTANCE VI_1 BACKUP 100
1765040003.900000000 INSTANCE VI_1 MASTER 50
1765040004.0 INSTANCE VI_1
garbage line here
"""


def test_the_scripts_lines_are_read_back_and_a_cut_line_is_skipped():
    events = notify.parse(LOG)
    assert [(e["at"], e["state"], e["priority"]) for e in events] == [
        (1765040000.1, "BACKUP", "100"),
        (1765040003.9, "MASTER", "50"),
    ]


def test_read_makes_times_relative_to_the_probe_with_each_directors_clock(memory_provider, fake_ssh):
    memory_provider.up_now = True
    fake_ssh.answer("halab-notify.log", node="server4", stdout=LOG)
    events = notify.read(memory_provider.remote, {"server4": 0.5}, 1765040000.0)
    assert [(e["node"], e["at"], e["state"]) for e in events] == [
        ("server4", -0.4, "BACKUP"),
        ("server4", 3.4, "MASTER"),
    ]


def _move(at: float, to: str) -> dict:
    return {"vip": "172.25.1.100:80", "at": at, "from": "x", "to": to}


def test_a_move_with_its_master_event_gives_the_notify_latency():
    events = [{"node": "server4", "at": 13.8, "state": "MASTER", "name": "VI_1"}]
    found = notify.compare(events, [_move(13.9, "server4")], 10.0, 20.0)
    assert found["latency"] == [{"vip": "172.25.1.100:80", "to": "server4", "ms": -100}]
    assert found["missing"] == found["extra"] == []
    assert "notify -100 ms after the client saw server4 take the VIP" in notify.summary(found, 10.0)


def test_a_client_whose_arp_entry_failed_is_no_move_to_be_notified_of():
    """garp-lost: the client's entry for the VIP fails ("none") before it learns server4's MAC."""
    events = [{"node": "server4", "at": 12.0, "state": "MASTER", "name": "VI_1"}]
    moves = [_move(57.9, notify.UNRESOLVED), _move(57.96, "server4")]
    found = notify.compare(events, moves, 10.0, 60.0)
    assert found["missing"] == [] and [item["to"] for item in found["latency"]] == ["server4"]
    assert "MISSING" not in notify.summary(found, 10.0)


def test_a_move_without_an_event_is_missing_and_an_event_without_a_move_is_extra():
    """A paused MASTER resumed takes the VIP back without ever leaving MASTER: no event."""
    events = [
        {"node": "server4", "at": 25.0, "state": "MASTER", "name": "VI_1"},
        {"node": "server4", "at": 12.0, "state": "BACKUP", "name": "VI_1"},
    ]
    found = notify.compare(events, [_move(11.0, "server3")], 10.0, 30.0)
    assert found["missing"] == [{"vip": "172.25.1.100:80", "at": 11.0, "to": "server3"}]
    assert [e["node"] for e in found["extra"]] == ["server4"]
    text = notify.summary(found, 10.0)
    assert "MISSING: no MASTER event of server3" in text and "EXTRA: server4 entered MASTER" in text
    assert "server4 BACKUP at +2000 ms" in text  # when the second MASTER stepped down
    assert notify.compare(events, [], 40.0, 50.0)["masters"] == []  # outside the phase: not its events


def test_the_report_prints_the_stream_only_where_there_is_one(tmp_path):
    from halab.prove.results import PhaseResult

    quiet = PhaseResult("s", "p", 0, "", 0, 0, 0, 0, "", [], [], 0.0, 0.0, 1.0)
    moved = PhaseResult("s", "q", 0, "", 0, 0, 0, 0, "", [], [], 10.0, 0.0, 20.0)
    moved.notify = notify.compare([{"node": "server4", "at": 13.8, "state": "MASTER", "name": "VI_1"}], [], 10.0, 20.0)
    text = report.notify_text([ScenarioRun("s", "", 0.0, 0.0, {}, [], [quiet, moved])])
    assert text.splitlines()[1:] == [
        "  s / q: MASTER events: server4 at +3800 ms; EXTRA: server4 entered MASTER, no VIP moved to it"
    ]
    assert report.notify_text([ScenarioRun("s", "", 0.0, 0.0, {}, [], [quiet])]) == ""


def test_a_lab_running_an_imported_keepalived_conf_records_no_stream():
    """Its directors run the operator's file verbatim, which never calls halab's notify script:
    no stream is compared (an empty one would call every VIP move MISSING)."""
    lab = spec.load(paths.DEFAULT_LAB)
    assert notify.recorded(lab)
    own = lab.nodes["server3"].model_copy(update={"files": {"/etc/keepalived/keepalived.conf": "server3/k.conf"}})
    imported = lab.model_copy(update={"nodes": {**lab.nodes, "server3": own}})
    assert not notify.recorded(imported)
