"""Protocol bounds: how long a fault may cost the VIP's users, as formulas over the lab file.

Each bound is a number of seconds and its basis in words (what `--list-scenarios` and the
reports print), derived only from the lab's own settings:

- keepalived stopped cleanly on the MASTER: it sends a priority-0 advert and the BACKUP
  takes over after its skew time alone, (256 - priority) / 256 s (VRRPv3: times advert_int);
- the MASTER crashed or cut off: the BACKUP waits 3 x advert_int + skew (master down);
- the MASTER back: one advert settles who holds the VIP;
- a healed split brain: gratuitous ARP (garp_master_refresh) or the client's ARP ageing;
- a real server's nginx stopped or its node crashed: the health checker notices within
  delay_loop + connect_timeout, then retries `retry` times, `delay_before_retry` apart
  (keepalived's defaults when the lab leaves them unset: 1 retry, after 1 s, or 3 s for
  HTTP_GET), before IPVS drops it; back, it rejoins at the next check.

`FORMULAS` names every bound, and a scenario entry refers to its bounds by those names
(halab.prove.scenarios); the findings read which one a phase had (its `kind`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from halab.providers import netfaults
from halab.providers.grayfaults import SLOW as SLOW_ANSWER
from halab.spec import HealthCheck, Lab

# A client that gets no gratuitous ARP keeps a VIP's old MAC until its neighbour entry
# ages out: reachable for up to 1.5 x base_reachable_time (Linux: 30 s), then
# delay_first_probe_time (5 s), then ucast_solicit (3) unicast probes 1 s apart.
LINUX_REACHABLE = 30.0


def arp_ageing(reachable: float) -> Bound:
    """How long a client whose entry is not corrected keeps a VIP's old MAC."""
    return Bound(1.5 * reachable + 5 + 3, f"client ARP entry ages out (1.5 x {reachable:g} + 5 + 3 s)")


@dataclass(frozen=True)
class Bound:
    """A protocol bound: seconds, and the formula it came from in words."""

    seconds: float
    basis: str


def skew(lab: Lab, priority: int) -> float:
    """VRRP skew time: (256 - priority) / 256 s; in VRRPv3 scaled by the advert interval."""
    scale = lab.vrrp.advert_int if lab.vrrp.version == 3 else 1.0
    return (256 - priority) * scale / 256


def pair(lab: Lab) -> tuple[str, str]:
    """(MASTER, BACKUP) of the first VIP: the directors every director fault is about."""
    master = lab.masters()[str(lab.vips[0])]
    return master, next(name for name in lab.role("director") if name != master)


def backup_priority(lab: Lab) -> int:
    """The priority of the director that takes the first VIP over from its MASTER."""
    return lab.nodes[pair(lab)[1]].priority or 0


def stop(lab: Lab) -> Bound:
    """A clean stop: the MASTER's priority-0 advert, then the BACKUP's skew alone."""
    priority = backup_priority(lab)
    scaled = f" x {lab.vrrp.advert_int:g}" if lab.vrrp.version == 3 else ""
    return Bound(skew(lab, priority), f"skew (256 - {priority}) / 256{scaled}")


def down(lab: Lab) -> Bound:
    """The MASTER gone without a word (crashed, cut off): the BACKUP's master-down timer."""
    advert, lag = lab.vrrp.advert_int, skew(lab, backup_priority(lab))
    return Bound(3 * advert + lag, f"3 x advert_int {advert:g} + skew {lag:.3f} s")


def back(lab: Lab) -> Bound:
    """The MASTER back: one advert settles who holds the VIP."""
    returns = "preempt: the MASTER takes the VIP back" if lab.vrrp.preempt else "nopreempt: the BACKUP keeps the VIP"
    return Bound(lab.vrrp.advert_int, f"one advert ({lab.vrrp.advert_int:g} s); {returns}")


def failback(lab: Lab) -> Bound:
    """When the VIP is back where it belongs after the MASTER's return: the returning director
    starts as BACKUP and takes over once its master-down timer runs out, with a preempt delay
    not before that delay (counted from its start) has passed; with nopreempt it stays BACKUP."""
    wait = down(lab)
    if lab.vrrp.preempt and lab.vrrp.preempt_delay:
        delay = lab.vrrp.preempt_delay
        return Bound(delay + wait.seconds, f"preempt_delay {delay} s + master down ({wait.basis})")
    return Bound(wait.seconds, f"master down ({wait.basis})")


def heal(lab: Lab, refresh: float | None = None, reachable: float = LINUX_REACHABLE) -> Bound:
    """A healed split brain, given garp_master_refresh (default: the lab's; None: unset) and
    the client's ARP base_reachable_time.

    The director that stayed MASTER sends no gratuitous ARP unless told to refresh, so
    clients still holding the other director's MAC wait for their ARP entry to age; and its
    IPVS table may be empty at first, since its checks failed while it was cut off.
    """
    refresh = lab.vrrp.garp_master_refresh if refresh is None else refresh
    check = lab.virtual_services[0].health_check
    ageing = arp_ageing(reachable)
    arp, arp_basis = (
        (refresh, f"garp_master_refresh {refresh} s")
        if refresh
        else (ageing.seconds, f"no garp_master_refresh: {ageing.basis}")
    )
    advert = lab.vrrp.advert_int
    return Bound(
        max(arp, check.delay_loop + check.connect_timeout) + advert,
        f"max({arp_basis}, recheck {check.delay_loop} + {check.connect_timeout} s) + one advert {advert:g} s",
    )


def detect(check: HealthCheck) -> Bound:
    """How long a dead real server stays in IPVS: the checker notices within delay_loop +
    connect_timeout, then retries (the check's own retry and delay_before_retry, else
    keepalived's defaults) before dropping it."""
    timeout, retries, delay = check.connect_timeout, check.retries, check.retry_delay
    return Bound(
        check.delay_loop + timeout + retries * (delay + timeout),
        f"delay_loop {check.delay_loop} + connect_timeout {timeout} + {retries} retry x ({delay} + {timeout}) s",
    )


def check(lab: Lab) -> Bound:
    """A real server down: the first service's health check's detection time."""
    return detect(lab.virtual_services[0].health_check)


def recheck(lab: Lab) -> Bound:
    """A real server back: its next check (delay_loop + connect_timeout)."""
    health = lab.virtual_services[0].health_check
    return Bound(
        health.delay_loop + health.connect_timeout, f"next check {health.delay_loop} + {health.connect_timeout} s"
    )


def rejoin(lab: Lab) -> Bound:
    """A real server back costs nothing: it rejoins only once its check passes."""
    return Bound(0.0, "none: it rejoins only once its check passes")


def flaps(lab: Lab) -> Bound:
    """A link flapping FLAPS times, each cut long enough for a takeover: the client can lose
    at most each cut's takeover (the master-down timer) in a row, so no gap may exceed their sum."""
    count, each = netfaults.FLAPS, down(lab)
    return Bound(count * each.seconds, f"{count} flaps x master-down timer ({each.basis})")


def garp_lost(lab: Lab) -> Bound:
    """A takeover whose gratuitous ARPs were all lost (both bursts: at once and garp_master_delay
    later): the client, caching ARP as a router does, learns the new holder only as a healed
    split brain's does (`heal`)."""
    taken, learned = stop(lab), heal(lab, reachable=netfaults.ROUTER_REACHABLE)
    return Bound(
        taken.seconds + netfaults.GARP_DELAY + learned.seconds,
        f"{taken.basis} + garp_master_delay {netfaults.GARP_DELAY:g} s (both bursts lost) + {learned.basis}",
    )


def idle(lab: Lab) -> Bound:
    """No fault costs nothing."""
    return Bound(0.0, "none: nothing happens")


def quiet(lab: Lab) -> Bound:
    """The gap between two faults of a campaign costs nothing; a blip within the margin is noise."""
    return Bound(0.0, "none: the quiet gap between two faults")


# Every bound a scenario entry may name, and what each one is, for the findings and docs.
FORMULAS: dict[str, Callable[[Lab], Bound]] = {
    "stop": stop,
    "down": down,
    "return": back,
    "heal": heal,
    "check": check,
    "recheck": recheck,
    "rejoin": rejoin,
    "flaps": flaps,
    "garp-lost": garp_lost,
    "idle": idle,
    "quiet": quiet,
}


def of(lab: Lab, name: str) -> Bound:
    """The bound called name (a key of FORMULAS) for this lab; 0 s for ""."""
    return FORMULAS[name](lab) if name else Bound(0.0, "")


# --- gray failures: a node half broken rather than gone --------------------------------

# How long a fault stays on a real server whose health check cannot see it: long enough for
# several checks (the seed's delay_loop 3 + connect_timeout 3, three times over).
GRAY_HOLD = 10.0
# How often longer than the master-down timer a paused MASTER stays paused: "several".
PAUSE_TIMES = 3


def paused(lab: Lab) -> Bound:
    """How long a paused MASTER stays paused: PAUSE_TIMES master-down intervals."""
    wait = down(lab)
    return Bound(PAUSE_TIMES * wait.seconds, f"{PAUSE_TIMES} x master down ({wait.basis})")


def resume(lab: Lab) -> Bound:
    """A paused MASTER resumed: still MASTER to itself, it advertises its higher priority at
    once, and the BACKUP that took over yields (nopreempt or not: two MASTERs, the lower
    steps down)."""
    advert = lab.vrrp.advert_int
    return Bound(advert, f"one advert ({advert:g} s): the BACKUP yields to the resumed MASTER")


def reload(lab: Lab) -> Bound:
    """A reload (SIGHUP) with the configuration unchanged costs nothing."""
    return Bound(0.0, "none: a reload keeps the VRRP state and the IPVS table")


def reinstate(lab: Lab) -> Bound:
    """The VIP deleted from the MASTER by another program: keepalived 2.x sees the netlink
    deletion, leaves MASTER (a priority-0 advert) with its master-down timer set to its own
    skew, and takes the VIP back before the BACKUP's longer skew runs out; one advert settles it."""
    master, _ = pair(lab)
    priority = lab.nodes[master].priority or 0
    lag = skew(lab, priority)
    return Bound(
        lag + lab.vrrp.advert_int,
        f"the MASTER's skew (256 - {priority}) / 256 = {lag:.3f} s + one advert {lab.vrrp.advert_int:g} s",
    )


def _gray(noticed: Callable[[HealthCheck], bool], blind: str) -> Callable[[Lab], Bound]:
    """A real server's gray fault: the check's detection time when its type can see it, else
    none (the server stays in IPVS and its requests fail for as long as the fault lasts)."""

    def bound(lab: Lab) -> Bound:
        check = lab.virtual_services[0].health_check
        if noticed(check):
            return detect(check)
        return Bound(GRAY_HOLD, f"none: {check.type} {blind}; it stays in IPVS while the fault lasts ({GRAY_HOLD:g} s)")

    return bound


# Whether a health check sees each gray fault of a real server: a hung nginx still completes
# the TCP handshake (the kernel does), and so does one answering 500 or late; HTTP_GET waits
# connect_timeout for the answer and compares its status.
NOTICED: dict[str, Callable[[HealthCheck], bool]] = {
    "hang": lambda check: check.type == "HTTP_GET",
    "error": lambda check: check.type == "HTTP_GET" and check.status_code != 500,
    "slow": lambda check: check.type == "HTTP_GET" and check.connect_timeout < SLOW_ANSWER,
}


# The gray failures' (issue 27).
FORMULAS.update(
    {
        "failback": failback,
        "paused": paused,
        "resume": resume,
        "reload": reload,
        "reinstate": reinstate,
        "hang": _gray(NOTICED["hang"], "completes the TCP handshake with a hung nginx"),
        "error": _gray(NOTICED["error"], "completes the TCP handshake with an nginx answering 500"),
        "slow": _gray(NOTICED["slow"], f"does not wait {SLOW_ANSWER:g} s for an answer (or waits longer)"),
    }
)
