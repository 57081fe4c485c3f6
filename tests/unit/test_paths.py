"""The names a lab takes on the host (halab.paths): each carries the checkout's id and its
kind, none of one lab, kind or checkout is another's, and each parses back."""

from __future__ import annotations

import itertools

import pytest

from halab import paths
from halab.errors import UsageError
from halab.paths import LabPaths

# Lab names chosen to collide under a careless format: a lab called like another's kind.
LABS = ("a", "a-vms", "a-nat", "a-net", "a-local", "x", "x-nat", "vms", "nat", "a-vm-server1")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HALAB_HOME", str(tmp_path / "home"))
    return tmp_path


def names(lab: LabPaths) -> dict[str, str]:
    return {
        "local namespace": lab.netns,
        "libvirt namespace": lab.libvirt_netns,
        "network": lab.network,
        "nat network": lab.nat_network,
        "vm": lab.vm("server1"),
    }


def test_no_two_labs_kinds_or_checkouts_share_a_name(home, monkeypatch):
    everything = [(lab, kind, name) for lab in LABS for kind, name in names(LabPaths(lab)).items()]
    monkeypatch.setenv("HALAB_HOME", str(home / "another-checkout"))
    everything += [("other " + lab, kind, name) for lab in LABS for kind, name in names(LabPaths(lab)).items()]
    for (lab1, kind1, name1), (lab2, kind2, name2) in itertools.combinations(everything, 2):
        assert name1 != name2, f"{lab1} {kind1} and {lab2} {kind2} are both {name1}"
    # Nor is one lab's VM prefix the start of another lab's VM names (teardown matches by prefix).
    vms = [(lab, LabPaths(lab)) for lab in LABS]
    assert [(a, b) for (a, pa), (b, pb) in itertools.permutations(vms, 2) if pb.vm("client").startswith(pa.vm())] == []


def test_every_name_parses_back_to_its_checkout_lab_and_kind(home):
    lab = LabPaths("a-vms")
    checkout = paths.checkout_id()
    assert paths.parse_host_name(lab.netns) == (checkout, "a-vms", paths.LOCAL_NAMESPACE, "")
    assert paths.parse_host_name(lab.libvirt_netns) == (checkout, "a-vms", paths.VMS_NAMESPACE, "")
    assert paths.parse_host_name(lab.network) == (checkout, "a-vms", paths.LAB_NETWORK, "")
    assert paths.parse_host_name(lab.nat_network) == (checkout, "a-vms", paths.NAT_NETWORK, "")
    assert paths.parse_host_name(lab.vm("server1")) == (checkout, "a-vms", paths.VM, "server1")
    assert paths.parse_guest_tag(lab.guest_tag("client")) == (checkout, "a-vms", paths.GUEST, "client")
    assert paths.host_name(checkout, "a-vms", paths.VM, "server1") == lab.vm("server1")


@pytest.mark.parametrize(
    "name",
    ["halab-abcdef-a", "halab-abcdef-a-vms", "halab-abcdef-a.vm", "halab-abcdef-a.vm-", "halab-abcdef-a.net-x",
     "halab-abcdef-a.bridge", "halab-abcdeg-a.net", "halab-abcdef-A.net", "other-abcdef-a.net", "halab_abcdef_a_"],
)  # fmt: skip
def test_anything_else_parses_to_none(name):
    assert paths.parse_host_name(name) is None
    assert paths.parse_guest_tag(name) is None


def test_every_kind_of_run_the_project_makes_gets_its_own_folder(home):
    """The suite's own labs run as "acceptance-suite": a name longer than a lab's may be."""
    lab = paths.LabPaths("seed")
    made = [lab.new_run(what) for what in ("acceptance-suite", "acceptance", "failover", "failover")]
    assert len(set(made)) == 4 and lab.latest.resolve() == made[-1] and made[-1].name.endswith("-failover-2")
    with pytest.raises(UsageError):
        lab.new_run("../x")
