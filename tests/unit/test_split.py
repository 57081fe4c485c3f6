"""Split brain on synthetic timelines: the figures (halab.prove.split) and the verdicts on them."""

from __future__ import annotations

import pytest

from halab.prove import split, verdicts
from halab.prove.results import Margin
from halab.prove.scenarios import Phase
from halab.providers.faults import Fault
from tests.fixtures import phase_of, probe_record

VIP = "172.25.1.100"


def _was(node: str, present: bool, at: float, vip: str = VIP) -> dict:
    return {"node": node, "vip": vip, "present": present, "at": at}


# server3 holds the VIP from the start; server4 takes it at 4 s (partition), drops it at 12 s.
PARTITION = [
    _was("server3", True, 0.0),
    _was("server4", False, 0.0),
    _was("server4", True, 4.0),
    _was("server4", False, 12.0),
]


def test_segments_name_who_held_the_vip_when():
    pieces = split.segments(PARTITION, VIP, 2.0, 15.0)
    assert [(p.start, p.end, sorted(p.holders)) for p in pieces] == [
        (2.0, 4.0, ["server3"]),
        (4.0, 12.0, ["server3", "server4"]),
        (12.0, 15.0, ["server3"]),
    ]
    assert split.dual(pieces) == 8.0 and split.first_dual(pieces) == 4.0
    assert split.holder_at(pieces, 5.0) == "" and split.holder_at(pieces, 13.0) == "server3"


def test_one_sample_of_overlap_is_the_sampling_not_two_masters():
    handover = [_was("server3", True, 0.0), _was("server4", True, 5.0), _was("server3", False, 5.04)]
    pieces = split.segments(handover, VIP, 0.0, 10.0)
    assert split.dual(pieces) == 0 and split.first_dual(pieces) is None
    assert split.takeovers(handover, VIP, 0.0, 10.0) == 1


def test_one_master_again_counts_from_the_heal_until_alone_for_good():
    flapping = [*PARTITION, _was("server4", True, 13.0), _was("server4", False, 14.5)]
    pieces = split.segments(flapping, VIP, 10.0, 20.0)
    assert split.single_from(pieces, 10.0) == pytest.approx(4.5)
    assert split.single_from(split.segments([*PARTITION, _was("server4", True, 13.0)], VIP, 10.0, 20.0), 10.0) is None


def test_arp_convergence_is_when_the_clients_requests_go_to_the_holders_mac_for_good():
    macs = {"m3": "server3", "m4": "server4"}
    requests = [probe_record(t / 10, True, target=f"{VIP}:80", mac="m4" if t < 150 else "m3") for t in range(100, 200)]
    pieces = split.segments(PARTITION, VIP, 10.0, 20.0)
    assert split.arp_from(requests, macs, pieces, f"{VIP}:80", 10.0) == pytest.approx(5.0)
    stale = [probe_record(t / 10, True, target=f"{VIP}:80", mac="m4") for t in range(100, 200)]
    assert split.arp_from(stale, macs, pieces, f"{VIP}:80", 10.0) is None


def test_adverts_are_counted_per_vrid_source_and_receiver():
    records = [
        {"node": "server3", "src": "172.25.1.1", "vrid": 51, "prio": 100, "sent": True, "at": 1.0},
        {"node": "server4", "src": "172.25.1.1", "vrid": 51, "prio": 100, "sent": False, "at": 1.0},
        {"node": "server3", "src": "172.25.1.1", "vrid": 51, "prio": 100, "sent": True, "at": 2.0},
        {"node": "server3", "src": "172.25.1.1", "vrid": 52, "prio": 100, "sent": True, "at": 2.0},
    ]
    assert split.adverts(records, 51, 0.0, 10.0) == {
        "heard by server3": {},
        "heard by server4": {"172.25.1.1": 1},
    }


def _judged(expected: str, presence: list[dict], acted: float, until: float, bound: float = 3.8):
    phase = phase_of("a split", bound, observe=("split",), split=expected, split_bound=bound, splitting=(VIP,))
    seen = verdicts.Seen([probe_record(t / 10, True, target=f"{VIP}:80") for t in range(300)], [], {"m3": "server3"})
    seen = verdicts.Seen(seen.requests, [], seen.macs, [], lived=split.Lived(presence, [], {VIP: 51}))
    return verdicts.judge("s", verdicts.Mark(phase, acted, acted, until), seen, Margin())


def test_a_split_within_the_detection_bound_passes_and_is_measured():
    result = _judged("splits", PARTITION, 1.0, 10.0)
    assert result.passed and result.split[VIP]["dual_after_ms"] == 3000 and result.split[VIP]["takeovers"] == 1


def test_a_split_past_its_detection_bound_fails():
    late = [_was("server3", True, 0.0), _was("server4", True, 9.5)]
    result = _judged("splits", late, 1.0, 12.0)
    assert not result.passed
    assert result.reasons() == [f"{VIP}: two MASTERs only after 8500 ms, bound 3800 ms + margin"]


def test_a_split_that_never_came_fails():
    result = _judged("splits", [_was("server3", True, 0.0)], 1.0, 12.0)
    assert result.reasons() == [f"{VIP}: never two MASTERs, expected both within 3800 ms"]


def test_a_dual_master_window_where_none_is_allowed_fails():
    result = _judged("holds", PARTITION, 1.0, 10.0)
    assert result.reasons() == [f"{VIP}: two MASTERs for 6000 ms, expected none"]
    assert _judged("holds", PARTITION[:2], 1.0, 10.0).passed


def test_a_rejoin_past_one_advert_fails_and_one_within_it_passes():
    assert _judged("rejoins", PARTITION, 11.5, 20.0, bound=1.0).passed
    slow = _judged("rejoins", PARTITION, 6.0, 20.0, bound=1.0)
    assert slow.reasons() == [f"{VIP}: one MASTER again after 6000 ms, bound one advert 1000 ms + margin"]


def test_no_presence_recorded_is_a_problem_not_a_pass():
    assert _judged("splits", [], 1.0, 10.0).reasons() == [
        "no VIP presence recorded on the directors: split brain not measured"
    ]


def test_a_flapping_link_may_move_the_vip_twice_per_flap_and_no_more():
    phase = Phase("flap", Fault("link-flap", "server3", amount=2), False, 8.0, "test", {}, kind="flaps")
    macs = {"m3": "server3", "m4": "server4"}

    def moved(times: int) -> list[str]:
        owners = ["m3", *(["m4", "m3"] * times)][: times + 1]
        requests = [probe_record(i * 1.0, True, target=f"{VIP}:80", mac=mac) for i, mac in enumerate(owners)]
        return verdicts.judge(
            "s", verdicts.Mark(phase, 0.0, 0.0, 50.0), verdicts.Seen(requests, [], macs), Margin()
        ).problems

    assert moved(4) == []
    assert moved(5) == ["the VIP moved 5 times in 2 flaps, at most 4"]


def test_the_predicted_rate_of_spurious_takeovers_follows_the_loss_and_advert_int():
    # seed: advert_int 1 s, master-down 3.805 s: three adverts lost in a row make a takeover.
    assert split.adverts_in_down(1.0, 3.805) == 3
    assert split.predicted_per_minute(0.5, 1.0, 3.805) == pytest.approx(60 * 0.5 * 0.5**3)
    assert split.predicted_per_minute(0.0, 1.0, 3.805) == 0
    assert split.predicted_per_minute(0.2, 1.0, 3.805) < split.predicted_per_minute(0.5, 1.0, 3.805)


def _advert(at: float, src: str, prio: int, node: str) -> dict:
    return {"node": node, "src": src, "vrid": 51, "prio": prio, "sent": False, "at": at}


def test_heard_takeovers_count_the_lower_prioritys_advert_runs_even_the_briefest():
    master, backup = "172.25.1.1", "172.25.1.2"
    records = [
        _advert(0.0, master, 100, "server4"),
        _advert(1.0, master, 100, "server4"),
        _advert(4.805, backup, 50, "server3"),  # a takeover the MASTER answered 2 ms later:
        _advert(4.807, master, 100, "server4"),  # between two samples, never seen holding the VIP
        _advert(5.0, master, 100, "server4"),
        _advert(9.805, backup, 50, "server3"),  # a long one: its answer lost too
        _advert(10.805, backup, 50, "server3"),
        _advert(10.805, backup, 50, "server5"),  # the same advert, heard by a third director
        _advert(11.0, master, 100, "server4"),
        {**_advert(12.0, backup, 50, "server4"), "sent": True},  # what a director sent: not heard
    ]
    assert split.heard_takeovers(records, 51, 0.0, 20.0) == 2
    assert split.heard_takeovers(records, 51, 5.0, 20.0) == 1
    assert split.heard_takeovers(records, 52, 0.0, 20.0) == 0  # another VRID's
    assert split.heard_takeovers(records[:2], 51, 0.0, 20.0) == 0  # the MASTER alone


def test_the_split_figures_are_said_under_the_table():
    from halab.prove import report
    from halab.prove.results import ScenarioRun

    result = _judged("splits", PARTITION, 1.0, 10.0)
    text = report.split_text([ScenarioRun("director-partition", "d", 0.0, 0.0, {}, [], [result])])
    assert text.splitlines() == [
        "Split brain, as the directors lived it (ms from each action):",
        f"  director-partition / a split: {VIP} (VRID 51): two MASTERs 6000 (from +3000), "
        "1 takeover(s), one MASTER for good never, client ARP on it never",
    ]
    assert report.split_text([ScenarioRun("s", "d", 0.0, 0.0, {}, [], [])]) == ""


def test_a_one_sided_fault_splits_only_the_vips_whose_backup_went_deaf():
    from halab import spec
    from halab.paths import LABS
    from halab.prove import scenarios

    dual = spec.load(LABS / "dual.yaml")
    first, second = (str(vip) for vip in dual.vips)
    phases = {s.name: s.phases[0] for s in scenarios.network(dual)}
    assert phases["director-partition"].splitting == (first, second)
    assert phases["multicast-dropped"].splitting == (first, second)
    assert phases["vrrp-blocked"].splitting == (first,)  # the BACKUP of the first VIP is deaf
    assert phases["one-way"].splitting == (first,)  # the first VIP's MASTER is not heard


def test_findings_name_unicast_peers_for_a_multicast_split_and_garp_refresh_for_a_stale_client():
    from halab import spec
    from halab.prove import findings
    from halab.prove.results import ScenarioRun

    lab = spec.load()  # the seed: multicast adverts, no garp_master_refresh
    split_phase, heal = _judged("splits", PARTITION, 1.0, 10.0), _judged("rejoins", PARTITION, 11.5, 20.0, bound=1.0)
    found = findings.of(lab, [ScenarioRun("multicast-dropped", "d", 0.0, 0.0, {}, [], [split_phase, heal])])
    assert [(f.phase, f.measured, f.fix) for f in found] == [
        (
            "a split",
            f"{VIP}: two MASTERs for 6000 ms",
            "vrrp.unicast_peers: [server3, server4] (labs/unicast.yaml: no split)",
        )
    ]
    stale = [probe_record(t / 10, True, target=f"{VIP}:80", mac="m4") for t in range(300)]
    phase = phase_of("heal", 54.0, observe=("split",), split="rejoins", split_bound=1.0)
    seen = verdicts.Seen(stale, [], {"m3": "server3", "m4": "server4"}, [], lived=split.Lived(PARTITION, [], {VIP: 51}))
    heal = verdicts.judge("s", verdicts.Mark(phase, 12.5, 12.5, 29.0), seen, Margin())
    [finding] = findings.of(lab, [ScenarioRun("director-partition", "d", 0.0, 0.0, {}, [], [heal])])
    assert finding.fix == "vrrp.garp_master_refresh: 2"
    assert (
        finding.measured == f"{VIP}: the client's ARP entry named another director than the holder to the phase's end"
    )


def test_heard_takeovers_are_figured_under_advert_loss_only():
    """In a split two MASTERs' adverts interleave: counted there, each would be a 'takeover'."""
    adverts = [_advert(0.5, "172.25.1.1", 100, "server4"), _advert(1.0, "172.25.1.2", 50, "server3")]
    lived = split.Lived([{"node": "server3", "vip": VIP, "present": True, "at": 0.0}], adverts, {VIP: 51})
    assert "heard_takeovers" not in split.figures(lived, [], {}, 0.0, 10.0)[VIP]
    assert split.figures(lived, [], {}, 0.0, 10.0, lossy=True)[VIP]["heard_takeovers"] == 1
