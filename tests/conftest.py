"""Shared fixtures. Fixtures start nothing at import; whatever one starts, it stops."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from halab import build, environment, pins, providers, spec
from halab.prove import labstate
from tests.fixtures import SUITE_VERSIONS, MemoryProvider


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The safety net: whatever happened, no lab the suite booted (all are named t-*) stays up,
    unless the developer asked to keep them (HALAB_KEEP_LABS, named in the failure summary)."""
    if environment.keep_labs() or os.geteuid() != 0:
        return
    for name in providers.checkout_labs():
        if name.startswith("t-") and providers.footprint(name):
            providers.down_everywhere(name)


@pytest.fixture(autouse=True)
def versions_from_the_lab(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests read the lab files' own versions, whatever the caller exported
    (HALAB_NGINX_VERSION=1.22.1 on a host without upstream access must not change them)."""
    if request.path.is_relative_to(Path(__file__).parent / "unit"):
        for name in pins.pinned():
            monkeypatch.delenv(environment.version_variable(name), raising=False)
        monkeypatch.delenv(environment.LAUNCHER, raising=False)


@pytest.fixture(scope="session")
def builds() -> dict[str, build.Build]:
    """From-source keepalived and nginx (compiled once, then cached across runs)."""
    return build.ensure_all(SUITE_VERSIONS)


class FakeSsh:
    """An `ssh` on PATH standing in for the nodes: logs every (node, command) and answers from
    rules, the first whose `match` is in the command: its stdout, exit code, and a delay. A
    lab-state read (halab.prove.labstate) gets each of its sections answered by its own rule."""

    def __init__(self, directory: Path) -> None:
        self.log = directory / "ssh.log"
        self.rules_file = directory / "ssh-rules.json"
        self.rules_file.write_text("[]")

    def answer(self, match: str, stdout: str = "", rc: int = 0, sleep: float = 0.0, node: str = "") -> None:
        rules = json.loads(self.rules_file.read_text())
        rules.append({"match": match, "stdout": stdout, "rc": rc, "sleep": sleep, "node": node})
        self.rules_file.write_text(json.dumps(rules))

    def reset(self) -> None:
        self.rules_file.write_text("[]")

    def calls(self) -> list[tuple[str, str]]:
        """(node, command) of every ssh run so far."""
        if not self.log.exists():
            return []
        return [tuple(json.loads(line)) for line in self.log.read_text().splitlines()]


@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSsh:
    fake = FakeSsh(tmp_path)
    script = tmp_path / "fake-bin" / "ssh"
    script.parent.mkdir()
    script.write_text(f"""#!{sys.executable}
import json, sys, time
args = sys.argv[1:]
assert args[0] == "-F", args
if args[2] == "-O":  # a control command to the master connection (ssh -O exit node)
    node, command = args[4], "-O " + args[3]
else:
    node, command = args[2], " ".join(args[3:])
with open({str(fake.log)!r}, "a") as log:
    log.write(json.dumps([node, command]) + "\\n")
rules = json.load(open({str(fake.rules_file)!r}))
def first(command):
    return next((r for r in rules if r["match"] in command and r["node"] in ("", node)), None)
if {labstate.MARK!r} in command:  # a lab-state read: each section answered on its own
    rc = 0
    for chunk in command.split("echo '{labstate.MARK}")[1:]:
        part, _, rest = chunk.partition("'")
        print({labstate.MARK!r} + part)
        rule = first(rest.removesuffix("; true")) if rest.strip("; ") not in ("", "true") else None
        sys.stdout.write(rule["stdout"] if rule else "")
        rc = rc or (rule["rc"] if rule else 0)
    sys.exit(rc)
rule = first(command)
if rule:
    time.sleep(rule["sleep"])
    sys.stdout.write(rule["stdout"])
    sys.exit(rule["rc"])
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")
    return fake


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private state directory (HALAB_HOME) for one test."""
    monkeypatch.setenv("HALAB_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def memory_provider(home: Path, fake_ssh: FakeSsh) -> MemoryProvider:
    """The seed lab on MemoryProvider, its nodes answering through fake_ssh: server3 holds the VIP."""
    fake_ssh.answer(
        "ip -4 -o addr show",
        node="server3",
        stdout="2: eth0    inet 172.25.1.1/24 scope global eth0\n2: eth0    inet 172.25.1.100/32 scope global eth0\n",
    )
    fake_ssh.answer("ip -4 -o addr show", node="server4", stdout="2: eth0    inet 172.25.1.2/24 scope global eth0\n")
    fake_ssh.answer("pidof keepalived", node="server3", stdout="running\n")
    fake_ssh.answer("pidof keepalived", node="server4", stdout="running\n")
    MemoryProvider.events.clear()
    return MemoryProvider(spec.load(), progress=lambda _: None)
