"""What a test run leaves behind for a person to read: each node's logs and network state.

Collected over the lab's ssh_config (any provider) before a lab is torn down, so a
failed run can be understood after the lab is gone.
"""

from __future__ import annotations

from pathlib import Path

from halab.providers.base import ROLE_SERVICE, Provider

# file name -> command; each runs on the roles listed. A service's own log is wherever the
# provider runs it to (a file, or the journal): its log_command says.
COMMANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ip-addr.txt": ("ip addr; ip route", ("director", "realserver", "client")),
    "ipvsadm.txt": ("ipvsadm -Ln --stats; ipvsadm -Lnc", ("director",)),
    "nginx-access.log": ("tail -n 2000 /var/log/nginx/access.log", ("realserver",)),
}
# file name -> the service whose log it holds, collected on the role that runs it.
SERVICE_LOGS = {"keepalived.log": "keepalived", "nginx-error.log": "nginx", "smtpd.log": "smtpd"}


def commands(provider: Provider, role: str) -> dict[str, str]:
    """File name -> the command that fills it, on a node of role."""
    found = {name: command for name, (command, roles) in COMMANDS.items() if role in roles}
    found.update(
        {name: provider.log_command(service) for name, service in SERVICE_LOGS.items() if ROLE_SERVICE[role] == service}
    )
    return found


def collect(provider: Provider, target: Path) -> list[Path]:
    """Write target/nodes/<node>/<file> for every node; a node that does not answer gets
    the error instead, so a crashed node is visible rather than silently missing."""
    written = []
    for node, settings in provider.lab.nodes.items():
        directory = target / "nodes" / node
        directory.mkdir(parents=True, exist_ok=True)
        for name, command in commands(provider, settings.role).items():
            result = provider.remote.run(node, command, timeout=15)
            text = (
                result.stdout
                if result.returncode == 0
                else f"[{command!r} failed ({result.returncode})]\n{result.stdout}{result.stderr}"
            )
            (directory / name).write_text(text)
            written.append(directory / name)
    return written
