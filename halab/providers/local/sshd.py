"""ssh into the local lab's guests: per-lab keys, the guests' sshd_config, the users' ssh_config.

The ssh_config is the only thing the acceptance tests know about a lab (testinfra's
ssh backend), so it must work on its own: ProxyCommand enters the lab's namespace,
known_hosts pins the lab's host key, and halab.remote's client options keep a
ControlMaster per node.
"""

from __future__ import annotations

from halab.paths import LabPaths
from halab.providers.local.processes import checked
from halab.remote import client_options
from halab.spec import Lab


def prepare(lab: Lab, paths: LabPaths) -> None:
    """Keys (made once per lab), sshd_config for the guests, ssh_config and known_hosts for users."""
    ssh = paths.ssh
    ssh.mkdir(parents=True, exist_ok=True)
    ssh.chmod(0o700)
    for key in ("id_ed25519", "host_ed25519_key"):
        if not (ssh / key).exists():
            checked(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"halab-{lab.name}", "-f", str(ssh / key)],
                capture_output=True,
                timeout=30,
            )
    (ssh / "authorized_keys").write_text((ssh / "id_ed25519.pub").read_text())
    (ssh / "sshd_config").write_text(
        f"HostKey {ssh / 'host_ed25519_key'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nUseDNS no\nPidFile /run/sshd.pid\nAuthorizedKeysFile /root/.ssh/authorized_keys\n"
        "PrintMotd no\nAcceptEnv LANG\n"
    )
    host_key = (ssh / "host_ed25519_key.pub").read_text().split()[:2]
    (ssh / "known_hosts").write_text(
        "".join(f"{name},{node.address} {' '.join(host_key)}\n" for name, node in lab.nodes.items())
    )
    blocks = [f"Host {name}\n    HostName {node.address}\n" for name, node in lab.nodes.items()]
    blocks.append(
        "Host *\n"
        "    User root\n"
        f"    IdentityFile {ssh / 'id_ed25519'}\n"
        "    IdentitiesOnly yes\n"
        f"    UserKnownHostsFile {ssh / 'known_hosts'}\n"
        "    StrictHostKeyChecking yes\n" + client_options(paths, paths.netns)
    )
    paths.ssh_config.write_text("\n".join(blocks))
