"""The lab file: defaults, every validation rule, and messages a person can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from halab import spec
from halab.errors import SpecError

BROKEN = sorted((Path(__file__).parent / "broken").glob("*.yaml"))
LABS = Path(__file__).resolve().parents[2] / "labs"


def test_default_lab_is_the_seed_exactly():
    lab = spec.load()
    assert {n: (str(x.address), x.role, x.state, x.priority) for n, x in lab.nodes.items()} == {
        "server1": ("172.25.1.101", "realserver", None, None),
        "server2": ("172.25.1.102", "realserver", None, None),
        "server3": ("172.25.1.1", "director", "MASTER", 100),
        "server4": ("172.25.1.2", "director", "BACKUP", 50),
        "client": ("172.25.1.250", "client", None, None),
    }
    (service,) = lab.virtual_services
    assert (str(service.vip), service.port, service.protocol, service.lb_algo, service.lb_kind) == (
        "172.25.1.100", 80, "TCP", "rr", "DR")
    check = service.health_check
    assert (check.type, check.port, check.connect_timeout, check.delay_loop) == ("TCP_CHECK", 80, 3, 3)
    assert (lab.vrrp.virtual_router_id, lab.vrrp.advert_int, lab.vrrp.authentication.auth_type,
            lab.vrrp.authentication.auth_pass) == (51, 1, "PASS", "1111")
    assert (lab.notification.to, lab.notification.from_, lab.notification.smtp_server) == (
        ("root@localhost",), "keepalived@localhost", "client")  # the write-up's 127.0.0.1 reads no mail
    assert (lab.mode, lab.arp_suppression, lab.versions.keepalived, lab.versions.nginx) == (
        "active-backup", "arptables", "2.2.7", "1.17.8")


def test_model_defaults_match_the_seed_file():
    """A minimal lab file gets the seed's settings for everything it leaves out."""
    minimal = spec.parse(
        "name: seed\nsubnet: 172.25.1.0/24\nnodes:\n"
        "  server1: {address: 172.25.1.101, role: realserver}\n"
        "  server2: {address: 172.25.1.102, role: realserver}\n"
        "  server3: {address: 172.25.1.1, role: director, state: MASTER, priority: 100}\n"
        "  server4: {address: 172.25.1.2, role: director, state: BACKUP, priority: 50}\n"
        "  client: {address: 172.25.1.250, role: client}\n"
        "virtual_services:\n  - vip: 172.25.1.100\n    real_servers: {server1: {}, server2: {}}\n"
        "notification: {smtp_server: client}\n"
    )
    assert minimal == spec.load()


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_lab_gives_its_specific_message(path):
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(SpecError) as caught:
        spec.load(path)
    assert expected in str(caught.value)


def test_there_are_at_least_ten_distinct_broken_files_with_distinct_messages():
    messages = {p.read_text().splitlines()[0] for p in BROKEN}
    assert len(messages) == len(BROKEN) >= 10


def test_all_problems_are_reported_at_once():
    text = (LABS / "seed.yaml").read_text()
    text = text.replace("priority: 100}", "priority: 300}").replace("virtual_router_id: 51", "virtual_router_id: 0")
    text = text.replace("lb_algo: rr ", "lb_algo: fastest ")
    with pytest.raises(SpecError) as caught:
        spec.parse(text)
    paths = [p.path for p in caught.value.problems]
    assert paths == ["nodes.server3.priority", "virtual_services.0.lb_algo", "vrrp.virtual_router_id"]


def test_all_cross_field_problems_are_reported_at_once():
    text = (LABS / "seed.yaml").read_text()
    text = text.replace("172.25.1.250", "10.0.0.250").replace("state: BACKUP", "state: MASTER")
    with pytest.raises(SpecError) as caught:
        spec.parse(text)
    assert [p.path for p in caught.value.problems] == ["nodes.client.address", "nodes"]


def test_wrong_types_are_not_coerced():
    text = (LABS / "seed.yaml").read_text().replace("priority: 100}", "priority: '100'}")
    with pytest.raises(SpecError, match="nodes.server3.priority: '100' is not allowed: Input should be a valid integer"):
        spec.parse(text)


def test_unquoted_numeric_password_is_read_as_text():
    lab = spec.parse((LABS / "seed.yaml").read_text().replace('auth_pass: "1111"', "auth_pass: 1111"))
    assert lab.vrrp.authentication.auth_pass == "1111"


def test_non_mapping_and_unreadable_files_are_clear(tmp_path):
    with pytest.raises(SpecError, match="a lab file is a YAML mapping, got list"):
        spec.parse("- a\n- b\n")
    with pytest.raises(SpecError, match="cannot read the lab file: No such file or directory"):
        spec.load(tmp_path / "missing.yaml")


@pytest.mark.parametrize("name", ["seed", "active-active", "unicast"])
def test_example_labs_are_valid(name):
    assert spec.load(LABS / f"{name}.yaml").nodes
