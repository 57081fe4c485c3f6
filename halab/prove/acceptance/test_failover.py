"""Every failover scenario of the lab, measured from the client and held to its protocol bound.

The scenarios and their bounds are halab.prove.scenarios', the runner and the margin
halab.prove.runner's and results' (the same code behind `invoke test.failover`); a failure
message carries the scenario's table.
"""

from __future__ import annotations

import pytest

from halab.prove import campaign, report, scenarios
from halab.prove.results import DEFAULT_MARGIN, NOT_EXERCISED, ScenarioRun
from halab.prove.runner import Runner

pytestmark = pytest.mark.root
NAMES = [entry.name for entry in scenarios.CATALOGUE]
# The suite's own runs of the other shipped labs measure what each adds to the seed's:
# active-active, a crashed director's VIP moving while the other keeps serving; unicast
# (nopreempt, VRRPv3, multicast dropped), a crash and a clean stop. A --lab run gets all.
# NAT and TUN: a crashed MASTER, the scenario that moves everything the method needs (for
# NAT the real servers' gateway too: measured from a real server, held to the same bound).
FOCUS = {
    "t-dual": {"director-crash"},
    "t-unicast": {"director-crash", "keepalived-stop"},
    "t-nat": {"director-crash"},
    "t-tun": {"director-crash"},
    # persistence pins the client: nginx-stop must aim at its server (and be exercised);
    # its bound is the check's own retries (3 x (3 + 3) s after delay_loop 6 + 3).
    "t-persistent": {"nginx-stop"},
}


@pytest.mark.parametrize("name", NAMES)
def test_scenario_stays_within_its_bound(lab_case, name):
    if name not in FOCUS.get(lab_case.lab.name, NAMES):
        pytest.skip(
            f"{lab_case.lab.name} runs {', '.join(sorted(FOCUS[lab_case.lab.name]))} only; "
            f"the seed lab runs every scenario (invoke test.failover runs all on any lab)"
        )
    scenario = next(s for s in scenarios.scenarios(lab_case.lab) if s.name == name)
    run = Runner(lab_case.provider, progress=lambda _: None).run(scenario)
    assert run.passed, "\n" + report.table([run])
    assert all(phase.verdict != NOT_EXERCISED for phase in run.phases), "\n" + report.table([run])
    if lab_case.lab.nat is not None:
        _the_gateway_followed_the_vip(run, scenario)


# A minute's schedule on the seed lab, one fault of each family: the BACKUP's firewall drops
# VRRP (a split), the VIP deleted from the MASTER by another program, keepalived stopped there.
CAMPAIGN_SEED = 9


def test_a_short_seeded_campaign_breaks_no_invariant(lab_case):
    """Faults chained with no baseline restored between them: each starts from the state
    the previous heal left (a client ARP entry, a checker's retry, a VIP back by preemption),
    which no single scenario sees. The seed lab only: the others' mechanisms are the same."""
    if lab_case.lab.name != "t-seed":
        pytest.skip("the seed lab runs the suite's campaign; invoke test.chaos --lab FILE runs one on any lab")
    steps = campaign.plan(lab_case.lab, CAMPAIGN_SEED, 60)
    chaos = campaign.scenario(lab_case.lab, CAMPAIGN_SEED, steps)
    run = Runner(lab_case.provider, progress=lambda _: None, accept_unexercised=True).run(chaos)
    assert run.passed, "\n" + campaign.plan_text(lab_case.lab, CAMPAIGN_SEED, steps) + "\n" + report.table([run])


@pytest.mark.parametrize("name", [entry.name for entry in scenarios.NETWORK])
def test_network_fault_splits_and_heals_within_its_bounds(lab_case, name):
    """The network faults CI runs (scenarios.NETWORK's `ci`): a partition on the seed lab,
    dropped multicast on the unicast lab, which must not split; any of them on request."""
    shipped = lab_case.lab.name.removeprefix("t-")
    if name not in scenarios.in_ci(shipped):
        pytest.skip(f"{shipped} does not run {name} in the suite: `invoke test.failover --scenario {name}` does")
    scenario = next(s for s in scenarios.network(lab_case.lab) if s.name == name)
    run = Runner(lab_case.provider, progress=lambda _: None).run(scenario)
    assert run.passed, "\n" + report.table([run])
    assert all(phase.split for phase in run.phases if phase.split_expected), "\n" + report.table([run])


def _the_gateway_followed_the_vip(run: ScenarioRun, scenario: scenarios.Scenario) -> None:
    """NAT: in every phase that moved the VIP, a real server's ARP entry for the gateway ended
    on the VIP's new holder, and moved with it: one VRRP instance holds both, so the same
    gratuitous ARP burst announces both (allowed apart: the phase's margin)."""
    for phase, result in zip(scenario.phases, run.phases, strict=True):
        if not result.vip_moves:
            continue
        assert result.gateway_moves, f"{result.phase}: the VIP moved, the gateway never did\n{report.table([run])}"
        vip, gateway = result.vip_moves[-1], result.gateway_moves[-1]
        assert gateway["to"] == vip["to"] == phase.holders[vip["vip"].rsplit(":", 1)[0]], (vip, gateway)
        apart = abs(gateway["at"] - vip["at"])
        assert apart <= DEFAULT_MARGIN.of(phase.bound), (
            f"{result.phase}: the gateway moved {apart * 1000:.0f} ms apart from the VIP "
            f"(allowed {DEFAULT_MARGIN.of(phase.bound) * 1000:.0f} ms)\n{report.table([run])}"
        )
