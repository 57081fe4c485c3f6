"""A real server's rendered `lvs-realserver`, run for real: `stop` leaves the host as `start` found it.

Each run is in private network and mount namespaces (unshare), with its own /sys and /run,
on a veth standing for the node's NIC. The sysctls are preset to values the script does not
use, so a `stop` that writes fixed values (it wrote 0s once) or none (TUN's rp_filter stayed
off) shows. This host's kernel has no ipip: for TUN a veth named tunl0 stands for ipip's
device, which is enough for what is checked here (its link state and its sysctls); the lab
tier runs the script on the guests' ipip.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from halab import paths, render, spec
from tests.fixtures import needs_root

pytestmark = needs_root("the script runs in private network and mount namespaces (unshare)")

# In the namespaces: the node's NIC, sysctls the script does not set itself, then the
# state before, after two starts and after a stop, each after a marker line.
DRIVER = r"""
set -eu
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /run
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1  # no link-local churn
ip link add eth0 type veth peer name peer0
ip addr add "$SELF/24" dev eth0
ip link set eth0 up
ip link set peer0 up
tries=0  # the carrier comes up a moment later, and with it the routes' state
until [ "$(cat /sys/class/net/eth0/carrier)" = 1 ] || [ "$tries" -ge 50 ]; do sleep 0.1; tries=$((tries + 1)); done
if [ "$TUNL0" != none ]; then
    ip link add tunl0 type veth peer name tunp
    [ "$TUNL0" = down ] || ip link set tunl0 up
fi
for conf in all lo eth0 $( [ "$TUNL0" = none ] || echo tunl0 ); do
    sysctl -qw "net.ipv4.conf.$conf.arp_ignore=2" "net.ipv4.conf.$conf.arp_announce=1"
    sysctl -qw "net.ipv4.conf.$conf.rp_filter=2"
done
state() {
    sysctl -a 2>/dev/null | grep '^net\.ipv4\.conf\.' | sort
    ip -4 -o addr show
    # A link up once keeps a qdisc; its operstate follows its flags (kept) a moment later.
    ip -o link show | sed 's/link\/ether [0-9a-f:]*//; s/qdisc [a-z_]* //; s/ state [A-Z]* / /'
    ip rule show
    ip -4 route show table all
    arptables -L -n 2>/dev/null || true
    ls -A /run
}
echo "=== before"; state
"$SCRIPT" start; "$SCRIPT" start
echo "=== started"; state
"$SCRIPT" stop
echo "=== stopped"; state
"""


def states(lab: spec.Lab, tmp_path: Path, tunl0: str = "none") -> dict[str, str]:
    """before / started / stopped: the namespace's sysctls, addresses, links, rules, routes,
    ARP rules and /run around server1's script."""
    script = tmp_path / "lvs-realserver"
    script.write_text(render.render(lab)[f"server1/{render.REALSERVER_SCRIPT}"])
    script.chmod(0o755)
    result = subprocess.run(
        ["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c", DRIVER],
        env={
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "SCRIPT": str(script),
            "TUNL0": tunl0,
            "SELF": str(lab.nodes["server1"].address),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    parts = result.stdout.split("=== ")[1:]
    return {part.split("\n", 1)[0]: part.split("\n", 1)[1] for part in parts}


def sysctl(state: str, key: str) -> str:
    return next(line.split(" = ")[1] for line in state.splitlines() if line.startswith(f"{key} = "))


LABS = {
    "dr-arptables": (paths.DEFAULT_LAB, "arptables"),
    "dr-sysctl": (paths.DEFAULT_LAB, "sysctl"),
    "tun-arptables": (paths.LABS / "tun.yaml", "arptables"),
    "tun-sysctl": (paths.LABS / "tun.yaml", "sysctl"),
    "nat": (paths.LABS / "nat.yaml", "arptables"),
}


@pytest.mark.parametrize("case", list(LABS))
def test_stop_puts_back_what_start_changed(case, tmp_path):
    path, suppression = LABS[case]
    lab = spec.load(path).model_copy(update={"arp_suppression": suppression})
    tunl0 = "down" if lab.method == "TUN" else "none"
    seen = states(lab, tmp_path, tunl0)
    assert seen["started"] != seen["before"]  # start did something, so stop has something to undo
    assert seen["stopped"] == seen["before"]
    if lab.method == "TUN":
        assert sysctl(seen["started"], "net.ipv4.conf.tunl0.rp_filter") == "0"
        assert sysctl(seen["stopped"], "net.ipv4.conf.tunl0.rp_filter") == "2"
        assert sysctl(seen["stopped"], "net.ipv4.conf.all.rp_filter") == "2"
    if suppression == "sysctl":
        assert sysctl(seen["started"], "net.ipv4.conf.all.arp_ignore") == "1"
        assert sysctl(seen["stopped"], "net.ipv4.conf.all.arp_ignore") == "2"


def test_a_tunl0_that_was_up_before_start_stays_up(tmp_path):
    lab = spec.load(paths.LABS / "tun.yaml")
    seen = states(lab, tmp_path, "up")
    assert seen["stopped"] == seen["before"]
    assert re.search(r"^\d+: tunl0@\S+: <[^>]*[<,]UP[,>]", seen["stopped"], re.MULTILINE)
