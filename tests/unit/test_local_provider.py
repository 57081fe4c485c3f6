"""The local provider's facts that need no guest: where each service logs (as guest.sh
writes it), which logs the host keeps of a node, and what it prepares before booting."""

from __future__ import annotations

import pytest

from halab import build, paths, spec, versions
from halab.providers.local import provider as local
from halab.providers.local.provider import LocalProvider


@pytest.fixture
def made(tmp_path, monkeypatch) -> LocalProvider:
    monkeypatch.setenv("HALAB_HOME", str(tmp_path / "home"))
    return LocalProvider(spec.load(), progress=lambda _: None)


@pytest.mark.parametrize("service", ["keepalived", "smtpd"])
def test_a_daemons_log_command_reads_the_file_guest_sh_writes(made, service):
    assert made.log_command(service) == f"cat {local.LOGS[service]}"
    assert f">>{local.LOGS[service]} 2>&1" in paths.GUEST_INIT.read_text()


def test_nginx_logs_where_its_rendered_config_says(made):
    assert made.log_command("nginx") == "cat /var/log/nginx/error.log"


def test_the_host_keeps_a_guests_console_boot_log_and_var_log(made):
    files = made.paths.node("server3")
    (files.logs / "nginx").mkdir(parents=True)
    for log in (files.logs / "keepalived.log", files.logs / "nginx" / "error.log"):
        log.touch()
    assert made.host_logs("server3") == [
        files.console,
        files.boot_log,
        files.logs / "keepalived.log",
        files.logs / "nginx" / "error.log",
    ]


def test_before_booting_it_refuses_unobtainable_versions_then_builds_what_is_missing(made, monkeypatch):
    calls = []
    monkeypatch.setattr(versions, "strict", lambda lab, lab_given: calls.append(("strict", lab.name, lab_given)))
    monkeypatch.setattr(build, "ensure_all", lambda wanted, progress: calls.append(("build", wanted)))
    made.prepare(lab_given=True)
    assert calls == [("strict", "seed", True), ("build", made.lab.versions.model_dump())]
