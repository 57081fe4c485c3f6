"""ssh into the guests: per-lab keys, the guests' sshd_config, and the users' ssh_config.

The ssh_config is the only thing the acceptance tests know about a lab (testinfra's
ssh backend), so it must work on its own: ProxyCommand enters the lab's namespace,
known_hosts pins the lab's host key, and a ControlMaster keeps commands at ~0.1 s.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from halab.paths import LabPaths
from halab.spec import Lab


def prepare(lab: Lab, paths: LabPaths) -> None:
    """Keys (made once per lab), sshd_config for the guests, ssh_config and known_hosts for users."""
    ssh = paths.ssh
    ssh.mkdir(parents=True, exist_ok=True)
    ssh.chmod(0o700)
    for key in ("id_ed25519", "host_ed25519_key"):
        if not (ssh / key).exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"halab-{lab.name}", "-f", str(ssh / key)],
                           check=True, timeout=30)
    (ssh / "authorized_keys").write_text((ssh / "id_ed25519.pub").read_text())
    (ssh / "sshd_config").write_text(
        f"HostKey {ssh / 'host_ed25519_key'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nUseDNS no\nPidFile /run/sshd.pid\nAuthorizedKeysFile /root/.ssh/authorized_keys\n"
        "PrintMotd no\nAcceptEnv LANG\n"
    )
    host_key = (ssh / "host_ed25519_key.pub").read_text().split()[:2]
    (ssh / "known_hosts").write_text("".join(
        f"{name},{node.address} {' '.join(host_key)}\n" for name, node in lab.nodes.items()))
    blocks = [f"Host {name}\n    HostName {node.address}\n" for name, node in lab.nodes.items()]
    blocks.append(
        "Host *\n"
        "    User root\n"
        f"    IdentityFile {ssh / 'id_ed25519'}\n"
        "    IdentitiesOnly yes\n"
        f"    UserKnownHostsFile {ssh / 'known_hosts'}\n"
        "    StrictHostKeyChecking yes\n"
        f"    ProxyCommand ip netns exec {paths.netns} socat - TCP:%h:%p,connect-timeout=5\n"
        "    ControlMaster auto\n"
        f"    ControlPath {ssh}/cm-%C\n"
        "    ControlPersist 120\n"
        "    BatchMode yes\n"
        "    ConnectTimeout 10\n"
        "    LogLevel ERROR\n"
    )
    paths.ssh_config.write_text("\n".join(blocks))


def run(ssh_config: Path, node: str, command: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """One command on a node over a lab's ssh_config (any provider's); a node that does not
    answer in time (its link cut, say) gives ssh's own failure code, 255, not an exception."""
    argv = ["ssh", "-F", str(ssh_config), node, command]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 255, "", f"{node}: no answer within {timeout:.0f} s")


def vrrp_view(ssh_config: Path, lab: Lab, node: str) -> tuple[str, tuple[str, ...]]:
    """What a node says about VRRP: (MASTER|BACKUP|stopped|unreachable|-, VIPs it holds)."""
    result = run(ssh_config, node, f"ip -4 -o addr show dev {lab.vrrp.interface}; "
                 "pidof keepalived >/dev/null && echo keepalived-running; true", timeout=5)
    held = tuple(sorted(str(vip) for vip in lab.vips if f" {vip}/" in result.stdout))
    if result.returncode != 0:
        return "unreachable", held
    if lab.nodes[node].role != "director":
        return "-", held
    return ("MASTER" if held else "BACKUP") if "keepalived-running" in result.stdout else "stopped", held
