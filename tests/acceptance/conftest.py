"""The lab the acceptance suite checks, reached only through its ssh_config.

With `--lab FILE` (what `invoke test.acceptance` passes) the lab is the file's, as it is,
on `--provider`; otherwise the suite checks each shipped lab in turn, renamed t-<name>
(so it never touches a lab of the user's) with the versions this machine can build.
A lab that was already up is used and left up; a lab the suite boots, it tears down.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

import pytest
import testinfra

from halab import failover, paths, spec
from halab.providers import make
from halab.providers.base import Provider
from halab.spec import Lab, Versions
from tests.conftest import TEST_VERSIONS

SHIPPED = ("seed.yaml", "active-active.yaml", "unicast.yaml")


@dataclass
class LabCase:
    """A lab that is up: its model, its provider, and testinfra hosts over its ssh_config."""

    lab: Lab
    provider: Provider

    @cached_property
    def hosts(self) -> dict[str, testinfra.host.Host]:
        config = str(self.provider.ssh_config())
        return {name: testinfra.get_host(f"ssh://{name}", ssh_config=config) for name in self.lab.nodes}

    def host(self, node: str) -> testinfra.host.Host:
        return self.hosts[node]

    @property
    def client(self) -> str:
        return next(iter(self.lab.role("client")))

    @property
    def masters(self) -> dict[str, str]:
        return failover.masters(self.lab)

    def mac(self, node: str) -> str:
        return self.host(node).file(f"/sys/class/net/{self.lab.vrrp.interface}/address").content_string.strip()


def _labs(config: pytest.Config) -> list[Lab]:
    if config.getoption("lab"):
        return [spec.load(path) for path in config.getoption("lab")]
    labs = []
    for file in SHIPPED:
        lab = spec.load(paths.ROOT / "labs" / file)
        labs.append(lab.model_copy(update={"name": f"t-{lab.name}", "versions": Versions(**TEST_VERSIONS)}))
    return labs


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "lab_case" in metafunc.fixturenames:
        labs = _labs(metafunc.config)
        metafunc.parametrize("lab_case", labs, ids=[lab.name for lab in labs], indirect=True, scope="session")


@pytest.fixture(scope="session")
def lab_case(request: pytest.FixtureRequest) -> LabCase:
    lab: Lab = request.param
    provider_name = request.config.getoption("provider")
    if provider_name == "local" and os.geteuid() != 0:
        pytest.skip("needs root: the local provider creates network namespaces and user-mode Linux guests")
    if not request.config.getoption("lab"):
        request.getfixturevalue("builds")
    provider = make(lab, provider_name, progress=lambda _: None)
    started = not provider.running()
    if started:
        provider.up()
    # The checks expect each VIP on its highest-priority director. With nopreempt the first
    # election goes to whichever director's timer runs out first (boot order decides), and
    # the VIP stays there: move it as the failover runs do before each scenario.
    failover.Runner(provider.lab, provider, progress=lambda _: None).restore_baseline()
    yield LabCase(provider.lab, provider)
    if started:
        provider.down()

