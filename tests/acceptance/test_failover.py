"""Every failover scenario of the lab, measured from the client and held to its protocol bound.

The scenarios, their bounds and the margin are halab.failover's (the same code behind
`invoke test.failover`); a failure message carries the scenario's table.
"""

from __future__ import annotations

import pytest

from halab import failover, report, spec

pytestmark = pytest.mark.root
NAMES = [scenario.name for scenario in failover.scenarios(spec.load())]


@pytest.mark.parametrize("name", NAMES)
def test_scenario_stays_within_its_bound(lab_case, name):
    scenario = next(s for s in failover.scenarios(lab_case.lab) if s.name == name)
    run = failover.Runner(lab_case.lab, lab_case.provider, progress=lambda _: None).run(scenario)
    assert run.passed, "\n" + report.table([run])
