"""The failover arithmetic without a lab: the catalogue's bounds from lab files, and the
verdicts on synthetic timelines of probe records."""

from __future__ import annotations

import pytest

from halab import paths, spec
from halab.prove import bounds, scenarios, verdicts
from halab.prove.results import DEFAULT_MARGIN, FAIL, NOISE, WITHIN, Margin
from halab.prove.scenarios import Phase
from halab.providers.faults import Fault
from tests.fixtures import probe_record as record

WAIT = Fault("wait")


def phases(lab_file: str) -> dict[str, Phase]:
    lab = spec.load(paths.LABS / lab_file)
    return {phase.name: phase for scenario in scenarios.scenarios(lab) for phase in scenario.phases}


def phase(name: str = "crash x", bound: float = 1.0, **expect) -> Phase:
    """A phase with a test bound and no end state: what the verdicts read of one."""
    return Phase(name, WAIT, False, bound, "test", {}, **expect)


def judge(p: Phase, acted: float, done: float, until: float, requests: list[dict], macs=None, margin=DEFAULT_MARGIN):
    return verdicts.judge("s", verdicts.Mark(p, acted, done, until), verdicts.Seen(requests, macs=macs or {}), margin)


def test_seed_bounds_follow_vrrp_and_the_checker():
    seed = phases("seed.yaml")
    assert seed["stop keepalived on server3"].bound == pytest.approx(206 / 256)
    assert seed["crash server3"].bound == pytest.approx(3 + 206 / 256)
    assert seed["stop nginx on server1"].bound == pytest.approx(3 + 3 + 1 * (1 + 3))
    assert seed["restore server3's link"].bound == pytest.approx(53 + 1)  # no garp refresh: ARP ageing
    assert seed["restart server3"].holders == {"172.25.1.100": "server3"}  # preempt


def test_unicast_bounds_scale_with_vrrpv3_and_nopreempt_keeps_the_backup():
    unicast = phases("unicast.yaml")
    assert unicast["crash server3"].bound == pytest.approx(3 * 0.5 + 206 * 0.5 / 256)
    assert unicast["restart server3"].holders == {"172.25.1.100": "server4"}
    assert unicast["restore server3's link"].bound == pytest.approx(max(2, 2 + 2) + 0.5)


def test_active_active_masters_and_failover_targets():
    dual = phases("dual.yaml")
    assert dual["crash server3"].holders == {"172.25.1.100": "server4", "172.25.1.200": "server4"}
    assert dual["restart server3"].holders == {"172.25.1.100": "server3", "172.25.1.200": "server4"}


def test_outage_is_the_longest_gap_between_successes_including_the_probes_end():
    requests = [record(t / 10, True) for t in range(10)] + [record(1.0 + t / 10, False) for t in range(30)]
    requests += [record(4.0 + t / 10, True) for t in range(10)]
    assert verdicts.outage(requests, 0.95, 6) == pytest.approx(4.0 - 0.9, abs=1e-6)
    stuck = [record(t / 10, True) for t in range(10)] + [record(1.0 + t / 10, False, latency=1.0) for t in range(30)]
    assert verdicts.outage(stuck, 0.95, 10) == pytest.approx(3.9 + 1.0 - 0.91, abs=1e-6)


def test_a_failure_after_the_window_fails_the_phase_and_is_named():
    fine = [record(t / 10, t < 5 or t > 15) for t in range(40)]
    assert judge(phase(), 0.5, 0.5, 4.0, fine).passed
    late = [*fine, record(3.9, False)]
    result = judge(phase(), 0.5, 0.5, 4.0, late)
    assert not result.passed and result.failed_outside == 1 and "+3.40 s to vip" in result.reasons()[0]


def test_the_window_follows_a_takeover_late_in_the_phase():
    """Found by CI on VMs: keepalived started on the MASTER, which took the VIP back 4.1 s
    later; the request in flight on the BACKUP at that moment was reset."""
    start = phase("start x")
    macs = {"m3": "server3", "m4": "server4"}
    before = [record(t / 10, True, mac="m4") for t in range(46)] + [record(4.6, False, mac="m4")]
    back = [*before, *(record(4.7 + t / 10, True, mac="m3") for t in range(10))]
    result = judge(start, 0.5, 0.5, 6.0, back, macs)
    assert result.passed and result.failed == 1 and result.failed_outside == 0
    stayed = [{**r, "mac": "m4"} for r in back]  # the same late failure with no takeover counts
    assert judge(start, 0.5, 0.5, 6.0, stayed, macs).failed_outside == 1
    unknown = [*before, record(4.7, False, mac=""), *(record(4.8 + t / 10, True, mac="m4") for t in range(10))]
    assert verdicts.takeovers(unknown, 0, 6.0, macs) == []  # an outage alone is no takeover


def test_vip_moves_are_named_by_mac():
    requests = [record(t / 10, True, mac="m3" if t < 5 else "m4") for t in range(10)]
    moves = verdicts.vip_moves(requests, 0, 2, {"m3": "server3", "m4": "server4"})
    assert moves == [{"vip": "vip", "at": 0.5, "from": "server3", "to": "server4"}]


def test_fast_bounds_use_vrrpv3_centisecond_adverts_and_sync_keeps_connections():
    fast = phases("fast.yaml")
    assert fast["crash server3"].bound == pytest.approx(3 * 0.1 + 157 * 0.1 / 256)
    assert fast["stop keepalived on server3"].bound == pytest.approx(157 * 0.1 / 256)
    assert fast["crash server3"].established == fast["stop keepalived on server3"].established == "kept"
    assert "stall bound 923 ms" in scenarios.expectation(fast["crash server3"])  # 2 x 0.3613 + 0.2 s


def test_without_sync_a_director_failure_must_lose_established_connections():
    seed = phases("seed.yaml")
    assert seed["crash server3"].established == seed["stop keepalived on server3"].established == "lost"
    assert "lvs_sync_daemon" in scenarios.expectation(seed["crash server3"])
    assert seed["restart server3"].established == seed["cut server3's link"].established == ""


def test_judging_held_connections_adds_their_figures_and_the_contradicted_expectation():
    survivor = {"opened": 1.0, "last_ok": 29.9, "ended": 30.0, "outcome": "open", "stalls": [[10.0, 10.4]]}
    seen = verdicts.Seen([record(t / 10, True) for t in range(300)], [survivor])
    result = verdicts.judge("s", verdicts.Mark(phase(established="lost"), 10.0, 10.0, 30.0), seen, Margin())
    assert (result.connections, result.longest_stall_ms, result.stall_bound_ms) == ("1/1", 400, 2200)
    assert not result.passed and "expected them lost" in result.reasons()[0]


def test_held_connection_times_are_made_relative_to_the_probe_start():
    raw = {"opened": 101.0, "last_ok": 150.0, "ended": 151.0, "outcome": "open", "stalls": [[110.0, 111.0]]}
    moved = verdicts.relative(raw, 100.0)
    assert (moved["opened"], moved["ended"], moved["stalls"]) == (1.0, 51.0, [[10.0, 11.0]])


def test_the_idle_soak_is_a_no_fault_phase_run_on_request():
    lab = spec.load(paths.LABS / "fast.yaml")
    idle = scenarios.soak(lab, 60)
    assert idle.name == "idle" and idle.phases[0].kind == "idle" and idle.phases[0].bound == 0
    assert "idle" not in {s.name for s in scenarios.scenarios(lab)}
    assert [s.name for s in scenarios.chosen(lab, "idle")] == ["idle"]


def with_persistence(lab_file: str) -> spec.Lab:
    text = (paths.LABS / lab_file).read_text()
    if "persistence_timeout" in text:
        text = text.replace("persistence_timeout: null", "persistence_timeout: 60")
    else:
        text = text.replace("  - vip: 172.25.1.100\n", "  - vip: 172.25.1.100\n    persistence_timeout: 60\n")
    return spec.parse(text)


def test_persistence_must_stick_across_a_takeover_only_with_sync():
    def named(lab: spec.Lab) -> dict[str, Phase]:
        return {p.name: p for s in [*scenarios.scenarios(lab), scenarios.soak(lab)] for p in s.phases}

    fast, seed = named(with_persistence("fast.yaml")), named(with_persistence("seed.yaml"))
    assert fast["crash server3"].sticky and fast["stop keepalived on server3"].sticky and fast["idle"].sticky
    assert "one real server" in scenarios.expectation(fast["crash server3"])
    assert not seed["crash server3"].sticky and seed["idle"].sticky  # no sync: the new MASTER reschedules
    assert not phases("fast.yaml")["crash server3"].sticky  # no persistence_timeout: round robin


def test_a_sticky_phase_fails_when_another_real_server_answers():
    sticky = phase(sticky=True)
    one = [record(t / 10, True) for t in range(40)]
    assert judge(sticky, 1.0, 1.0, 4.0, one).passed
    moved = [*one, {**record(3.0, True), "page": "<h1>server2's page</h1>"}]
    result = judge(sticky, 1.0, 1.0, 4.0, moved)
    assert "answered by <h1>server1's page</h1> and <h1>server2's page</h1>" in result.reasons()[0]


def outage_of(seconds: float, resolution: float = 0.05) -> list[dict]:
    """Requests every 50 ms with one gap of `seconds` between answers, from t = 1 s."""
    before = [record(t * resolution, True, latency=0.0) for t in range(int(1 / resolution) + 1)]
    after = [record(1 + seconds + t * resolution, True, latency=0.0) for t in range(int(2 / resolution))]
    return before + after


@pytest.mark.parametrize(
    ("gap", "verdict", "words"),
    [
        (0.8, WITHIN, "within the bound"),
        (1.04, WITHIN, "within the bound"),  # over by less than the probe's 50 ms resolution
        (1.5, NOISE, "over the bound by 450 ms, within the noise margin"),
        (3.5, FAIL, "fail"),
    ],
)
def test_a_verdict_says_how_much_of_its_slack_it_used(gap, verdict, words):
    """A 1 s bound with the default margin (2 s + 20 %): within, over it inside the noise
    margin (a pass, but said as such), or over the margin (a failure)."""
    mark = verdicts.Mark(phase(), 0.9, 1.0, 6.0)
    result = verdicts.judge("s", mark, verdicts.Seen(outage_of(gap)), Margin(), resolution=0.05)
    assert (result.verdict, result.verdict_text, result.passed) == (verdict, words, verdict != FAIL)


def test_the_margin_is_an_option_and_a_tight_one_fails_what_the_default_lets_pass():
    mark = verdicts.Mark(phase(), 0.9, 1.0, 6.0)
    seen = verdicts.Seen(outage_of(1.5))
    assert verdicts.judge("s", mark, seen, Margin()).passed
    tight = verdicts.judge("s", mark, seen, Margin.parse("0.2s"))
    assert not tight.passed and "outage 1500 ms > bound 1000 + margin 200 ms" in tight.reasons()[0]


@pytest.mark.parametrize(
    ("text", "fixed", "share"),
    [("2s+20%", 2.0, 0.2), ("0.5s", 0.5, 0.0), ("10%", 0.0, 0.1), ("0", 0.0, 0.0), ("1.5", 1.5, 0.0)],
)
def test_margins_parse(text, fixed, share):
    assert Margin.parse(text) == Margin(fixed, share)


@pytest.mark.parametrize("text", ["", "fast", "2s+", "-1s", "2 s; rm -rf /", "20%+2s"])
def test_a_margin_that_is_not_one_says_the_format(text):
    from halab.errors import UsageError

    with pytest.raises(UsageError, match="is not SECONDS"):
        Margin.parse(text)


def served_by(server: str, start: float, end: float, mac: str = "m3") -> list[dict]:
    """Answered requests every 100 ms from start to end, all from one real server via mac."""
    return [
        {**record(start + t / 10, True, mac=mac), "page": f"<h1>{server}'s page</h1>"}
        for t in range(round((end - start) * 10))
    ]


def judge_scenario(lab: spec.Lab, name: str, requests: list[dict], accept: bool = False, macs=None) -> list:
    """Every phase of the named scenario judged on synthetic records: fault at 2 s, heal at 6 s."""
    run = next(s for s in scenarios.scenarios(lab) if s.name == name)
    marks = [verdicts.Mark(p, at, at, at + 4) for p, at in zip(run.phases, (2.0, 6.0), strict=False)]
    return verdicts.judge_all(name, marks, verdicts.Seen(requests, macs=macs or {"m3": "server3"}), Margin(), 0, accept)


def test_a_real_server_fault_the_pinned_client_never_meets_is_not_exercised():
    """The vacuous pass an operator found: with persistence every request went to server2
    while nginx-stop faulted server1; 0 failed, all passed. Now: NOT EXERCISED, and a failure."""
    lab = with_persistence("seed.yaml")
    stop, start = judge_scenario(lab, "nginx-stop", served_by("server2", 0, 10))
    assert stop.verdict == "not exercised" and not stop.passed
    assert "server1 answered none of the probe's 20 requests" in stop.verdict_text
    assert "server2 answered them all: persistence pins the client" in stop.verdict_text
    assert start.verdict == "not exercised" and not start.passed  # healing an unmet fault proves nothing
    accepted = judge_scenario(lab, "nginx-stop", served_by("server2", 0, 10), accept=True)
    assert all(r.passed and r.verdict == "not exercised" for r in accepted)


def test_a_real_server_that_answered_before_the_fault_is_exercised():
    lab = with_persistence("seed.yaml")
    stop, start = judge_scenario(lab, "nginx-stop", served_by("server1", 0, 10))
    assert not stop.unexercised and not start.unexercised and stop.passed


def test_a_director_fault_is_exercised_only_if_the_client_reached_that_director():
    lab = spec.load(paths.LABS / "seed.yaml")
    macs = {"m3": "server3", "m4": "server4"}
    met = judge_scenario(lab, "director-crash", served_by("server1", 0, 10, mac="m3"), macs=macs)
    assert [r.unexercised for r in met] == ["", ""]
    missed = judge_scenario(lab, "director-crash", served_by("server1", 0, 10, mac="m4"), macs=macs)
    assert missed[0].unexercised == "the client's requests reached server4 just before the fault, not server3"


def test_a_real_server_scenario_is_aimed_at_the_server_the_traffic_uses():
    lab = with_persistence("seed.yaml")
    nginx_stop = next(s for s in scenarios.scenarios(lab) if s.name == "nginx-stop")
    aimed = scenarios.retarget(lab, nginx_stop, "server2")
    assert [p.name for p in aimed.phases] == ["stop nginx on server2", "start nginx on server2"]
    assert aimed.phases[0].members == {"server2": False} and "server2" in aimed.description
    crash = next(s for s in scenarios.scenarios(lab) if s.name == "director-crash")
    assert scenarios.retarget(lab, crash, "server2") is crash  # a director fault is never moved


def test_a_page_names_its_server():
    assert verdicts.server_of("<h1>web-1's page</h1>") == "web-1"
    assert verdicts.server_of("<html>welcome</html>") == ""


def test_a_check_bound_uses_the_checks_own_retries_and_keepalived_defaults_per_type():
    """keepalived 2.2.7 waits 3 s before retrying an HTTP_GET (1 s for TCP_CHECK); a lab file
    may set retry and delay_before_retry, and the bound follows them."""
    seed = spec.load(paths.LABS / "seed.yaml")

    def check_bound(**settings) -> float:
        service = seed.virtual_services[0]
        check = service.health_check.model_copy(update=settings)
        lab = seed.model_copy(update={"virtual_services": (service.model_copy(update={"health_check": check}),)})
        return bounds.check(lab).seconds

    assert check_bound() == 3 + 3 + 1 * (1 + 3)
    assert check_bound(type="HTTP_GET") == 3 + 3 + 1 * (3 + 3)
    assert check_bound(delay_loop=6, retry=3, delay_before_retry=3) == 27  # the operator's design
    assert check_bound(retry=0) == 3 + 3
    persistent = spec.load(paths.LABS / "persistent.yaml")
    assert bounds.check(persistent).basis == "delay_loop 6 + connect_timeout 3 + 3 retry x (3 + 3) s"


def test_a_gap_that_runs_past_the_phase_is_only_its_own_up_to_the_phase_s_end():
    """A link cut recovered in 1 s, then its heal left the client on a stale MAC for 50 s:
    the cut's outage is what it saw before the heal began, not the heal's 50 s."""
    requests = [record(t / 10, True) for t in range(30)] + [record(3.0 + t / 10, False) for t in range(10)]
    requests += [record(4.0 + t / 10, True) for t in range(60)] + [record(10.0 + t, False) for t in range(50)]
    requests += [record(60.0 + t / 10, True) for t in range(10)]
    assert verdicts.outage(requests, 3.0, 10.05) == pytest.approx(4.0 - 2.9, abs=0.05)
    assert verdicts.outage(requests, 10.05, 61.0) == pytest.approx(60.0 - 9.9, abs=0.05)
