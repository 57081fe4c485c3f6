"""Every failover scenario of the lab, measured from the client and held to its protocol bound.

The scenarios, their bounds and the margin are halab.prove.failover's (the same code behind
`invoke test.failover`); a failure message carries the scenario's table.
"""

from __future__ import annotations

import pytest

from halab import spec
from halab.prove import failover, report

pytestmark = pytest.mark.root
NAMES = [scenario.name for scenario in failover.scenarios(spec.load())]
# The suite's own runs of the other shipped labs measure what each adds to the seed's:
# active-active, a crashed director's VIP moving while the other keeps serving; unicast
# (nopreempt, VRRPv3, multicast dropped), a crash and a clean stop. A --lab run gets all.
FOCUS = {"t-dual": {"director-crash"}, "t-unicast": {"director-crash", "keepalived-stop"}}


@pytest.mark.parametrize("name", NAMES)
def test_scenario_stays_within_its_bound(lab_case, name):
    if name not in FOCUS.get(lab_case.lab.name, NAMES):
        pytest.skip(
            f"{lab_case.lab.name} runs {', '.join(sorted(FOCUS[lab_case.lab.name]))} only; "
            f"the seed lab runs every scenario (invoke test.failover runs all on any lab)"
        )
    scenario = next(s for s in failover.scenarios(lab_case.lab) if s.name == name)
    run = failover.Runner(lab_case.provider, progress=lambda _: None).run(scenario)
    assert run.passed, "\n" + report.table([run])
