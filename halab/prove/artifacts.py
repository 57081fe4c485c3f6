"""What a test run leaves behind for a person to read: each node's logs and network state.

Collected over the lab's ssh_config (any provider) before a lab is torn down, so a
failed run can be understood after the lab is gone.
"""

from __future__ import annotations

from pathlib import Path

from halab.providers.base import Provider

# file name -> command; each runs on the roles listed. Journal fallbacks serve systemd nodes.
COMMANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ip-addr.txt": ("ip addr; ip route", ("director", "realserver", "client")),
    "keepalived.log": ("cat /var/log/keepalived.log 2>/dev/null || journalctl -u keepalived --no-pager", ("director",)),
    "ipvsadm.txt": ("ipvsadm -Ln --stats; ipvsadm -Lnc", ("director",)),
    "nginx-error.log": ("cat /var/log/nginx/error.log", ("realserver",)),
    "nginx-access.log": ("tail -n 2000 /var/log/nginx/access.log", ("realserver",)),
    "smtpd.log": ("cat /var/log/smtpd.log 2>/dev/null || journalctl -u halab-smtpd --no-pager", ("client",)),
}


def collect(provider: Provider, target: Path) -> list[Path]:
    """Write target/nodes/<node>/<file> for every node; a node that does not answer gets
    the error instead, so a crashed node is visible rather than silently missing."""
    written = []
    for node, settings in provider.lab.nodes.items():
        directory = target / "nodes" / node
        directory.mkdir(parents=True, exist_ok=True)
        for name, (command, roles) in COMMANDS.items():
            if settings.role not in roles:
                continue
            result = provider.remote.run(node, command, timeout=15)
            text = (
                result.stdout
                if result.returncode == 0
                else f"[{command!r} failed ({result.returncode})]\n{result.stdout}{result.stderr}"
            )
            (directory / name).write_text(text)
            written.append(directory / name)
    return written
