"""The names a lab takes on the host (halab.paths): each carries the checkout's id and its
kind, none of one lab, kind or checkout is another's, and each parses back."""

from __future__ import annotations

import itertools

import pytest

from halab import paths
from halab.errors import UsageError
from halab.paths import LabPaths
from tests.fixtures import invoke_bare

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


# HALAB_HOME reaches node.env (sourced by the guests), ssh_config (a ProxyCommand), the guests'
# kernel command line and hostfs mount options: none of these may read it as more than a path.
HOSTILE_HOMES = [
    "",  # an unset variable expanded: the state would land in the current directory
    "relative/home",
    "./home",
    "/tmp/a b",
    "/tmp/x'; touch /tmp/pwned; '",
    "/tmp/x\nProxyCommand sh -c reboot",
    "/tmp/$(reboot)",
    "/tmp/a%h",  # ssh_config expands %h
    "/tmp/a,b",  # hostfs reads , as the end of its mount option
    "/tmp/home/",
    "/tmp//home",
    "/tmp/./home",
    "/tmp/../home",
    "/",
    str(paths.ROOT),  # its labs/ would be the checkout's labs/
    str(paths.LABS / "mine"),
    "/tmp/" + "a" * 2000,
]


@pytest.mark.parametrize("value", HOSTILE_HOMES, ids=range(len(HOSTILE_HOMES)))
def test_a_hostile_halab_home_is_one_line_naming_the_variable_and_what_is_allowed(value, monkeypatch):
    monkeypatch.setenv("HALAB_HOME", value)
    with pytest.raises(UsageError) as caught:
        paths.LabPaths("seed")
    message = str(caught.value)
    assert message.startswith(f"HALAB_HOME={value[:80]!r}") and "allowed: " in message
    assert "\n" not in message and len(message) < 400


def test_a_halab_home_reaching_the_checkouts_labs_through_a_link_is_refused(tmp_path, monkeypatch):
    (tmp_path / "link").symlink_to(paths.ROOT)
    monkeypatch.setenv("HALAB_HOME", str(tmp_path / "link"))
    with pytest.raises(UsageError, match="labs/ is not inside the checkout's"):
        paths.home()


def test_a_plain_halab_home_is_used_as_given_and_unset_is_the_checkouts(tmp_path, monkeypatch):
    monkeypatch.setenv("HALAB_HOME", str(tmp_path / "state-1.2_x+y"))
    assert paths.LabPaths("seed").root == tmp_path / "state-1.2_x+y" / "labs" / "seed"
    monkeypatch.delenv("HALAB_HOME")
    assert paths.home() == paths.ROOT / ".halab"


def test_a_task_given_a_hostile_halab_home_stops_before_making_anything(tmp_path):
    home = tmp_path / "x'; touch pwned; '"
    result = invoke_bare("lab.down", "--name", "seed", home=home)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f'HALAB_HOME="{tmp_path}/x') and "allowed: an absolute, normalised path" in line
    assert list(tmp_path.iterdir()) == []
