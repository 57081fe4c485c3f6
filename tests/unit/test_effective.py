"""Reading keepalived's own dump of the checks it runs (recorded from the persistent lab's
BACKUP, keepalived 2.2.7); the acceptance tier reads it live from every shipped lab."""

from __future__ import annotations

from pathlib import Path

from halab import paths, spec
from halab.prove import effective, scenarios

DUMP = Path(__file__).parent / "recorded" / "keepalived_check.data"


def test_the_dump_gives_each_checkers_timings_in_seconds():
    checks = effective.parse(DUMP.read_text())
    assert [c.server for c in checks] == ["192.168.0.221", "192.168.0.222"]
    assert checks[0] == effective.Check("192.168.0.200", "192.168.0.221", "TCP_CHECK", 6.0, 3.0, 3, 3.0)
    assert checks[0].words() == "TCP_CHECK delay_loop 6 s, connect_timeout 3 s, 3 retries 3 s apart"


def test_a_file_that_agrees_with_the_daemon_is_judged_as_it_is():
    lab = spec.load(paths.LABS / "persistent.yaml")
    assert effective.applied(lab, effective.parse(DUMP.read_text())) == (lab, [])
    assert effective.applied(lab, []) == (lab, [])  # no dump read: the file's numbers


def test_where_file_and_daemon_differ_the_bounds_follow_the_daemon_and_say_so():
    lab = spec.load(paths.LABS / "persistent.yaml")
    ran = [effective.Check("192.168.0.200", "192.168.0.221", "TCP_CHECK", 6.0, 3.0, 1, 1.0)]
    judged, differ = effective.applied(lab, ran)
    assert differ == [
        "health_check.retry: the lab says 3, keepalived runs 1",
        "health_check.delay_before_retry: the lab says 3, keepalived runs 1",
    ]
    nginx_stop = [s for s in scenarios.scenarios(lab) if s.name == "nginx-stop"]
    (rebuilt,) = scenarios.rebuilt(judged, nginx_stop)
    assert rebuilt.phases[0].bound == 6 + 3 + 1 * (1 + 3) and nginx_stop[0].phases[0].bound == 27


def test_an_http_check_runs_with_keepalived_s_3_s_default_delay_before_retry():
    """Recorded from the unicast lab (HTTP_GET, retry and delay_before_retry unset): the
    default the seed's formula once got wrong (1 s) is 3 s, and the lab's model agrees."""
    checks = effective.parse((DUMP.parent / "keepalived_check_http.data").read_text())
    assert {(c.method, c.retries, c.delay_before_retry) for c in checks} == {("HTTP_GET", 1, 3.0)}
    unicast = spec.load(paths.LABS / "unicast.yaml")
    assert effective.applied(unicast, checks) == (unicast, [])
