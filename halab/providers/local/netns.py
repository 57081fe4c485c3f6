"""The lab's switch: a bridge inside a private network namespace.

The lab subnet lives only here and in the guests: the root namespace never gets an
address or a route in it. The bridge holds the subnet's last usable address, the one
point through which ssh (ProxyCommand `ip netns exec ... socat`) reaches the guests.
"""

from __future__ import annotations

import subprocess

from halab.providers.local.processes import checked

BRIDGE = "br0"
# LVS-NAT's second network (the real servers' own subnet behind the directors), on a
# second bridge in the same namespace; the namespace does not route between the two.
NAT_BRIDGE = "br1"


def run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """One ip/bridge command; with check, its failure a ProviderError (processes.checked)."""
    if check:
        return checked(list(command), capture_output=True, timeout=30)
    return subprocess.run(list(command), capture_output=True, text=True, timeout=30)


def names() -> list[str]:
    """Every network namespace on the host (`ip netns list` prints `name (id: N)`)."""
    return [line.split()[0] for line in run("ip", "netns", "list", check=False).stdout.splitlines() if line.strip()]


def exists(name: str) -> bool:
    return name in names()


def create(name: str, access: str) -> None:
    """The namespace with its bridge up and the access address on it."""
    run("ip", "netns", "add", name)
    run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
    add_bridge(name, BRIDGE, access)


def add_bridge(name: str, bridge: str, access: str) -> None:
    """A switch in the namespace, up, holding its network's access address (ssh reaches guests through it)."""
    inside = ("ip", "netns", "exec", name)
    run(*inside, "ip", "link", "add", bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0")
    run(*inside, "ip", "addr", "add", access, "dev", bridge)
    run(*inside, "ip", "link", "set", bridge, "up")


def delete(name: str) -> None:
    if exists(name):
        run("ip", "netns", "del", name)


def links(name: str) -> set[str]:
    result = run("ip", "netns", "exec", name, "ip", "-o", "link", "show", check=False)
    return {line.split(":")[1].strip().split("@")[0] for line in result.stdout.splitlines() if ":" in line}


def attach(name: str, tap: str, multicast: bool = True, bridge: str = BRIDGE) -> None:
    """Plug a guest into a switch. multicast=False: the switch floods no multicast to it,
    which drops VRRP's 224.0.0.18 adverts the way most clouds do (unicast still passes)."""
    run("ip", "netns", "exec", name, "ip", "link", "set", tap, "master", bridge, "up")
    run("ip", "netns", "exec", name, "bridge", "link", "set", "dev", tap, "mcast_flood", "on" if multicast else "off")


def detach(name: str, tap: str) -> None:
    """Unplug a guest from the switch. The tap itself stays up: a user-mode Linux NIC whose
    tap goes down stops reading from it for good, so `ip link set down` is no way to cut."""
    run("ip", "netns", "exec", name, "ip", "link", "set", tap, "nomaster")


def filter_frames(name: str, rule: list[str], add: bool = True, check: bool = True) -> None:
    """Add (or delete) one rule in the namespace's bridge FORWARD chain (ebtables): what
    crosses the lab switch between two ports. The namespace going takes its rules with it."""
    run("ip", "netns", "exec", name, "ebtables", "-A" if add else "-D", "FORWARD", *rule, check=check)


def frame_filters(name: str) -> list[str]:
    """The rules of the namespace's bridge FORWARD chain, one a line ([] when none)."""
    listing = run("ip", "netns", "exec", name, "ebtables", "-L", "FORWARD", check=False).stdout
    return [line for line in listing.splitlines() if line.startswith("-")]
