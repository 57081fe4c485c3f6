"""Gray-failure primitives: a node half broken rather than gone (issue 27).

What keepalived operators report most after split brain: a director frozen (a VM snapshot,
a starved guest) that wakes up believing it is still MASTER; a reload; the VIP deleted by
other software; a real server that still completes TCP handshakes but never answers, answers
500, or answers too late. Each is applied and healed with plain commands over the lab's ssh
(the same on every provider), and says what of it remains after its heal.

Everything a fault leaves on a node lives under FAULTS, a directory in /run: a node that
reboots (a crash scenario's heal) starts without any of it. nginx includes FAULTS/nginx/*.conf
at server level (halab/templates/nginx.conf.j2), empty unless a fault put a file there.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING

from halab.errors import ProviderError, UsageError

if TYPE_CHECKING:
    from halab.providers.base import Provider
    from halab.providers.faults import Fault

FAULTS = "/run/halab-faults"
NGINX_DROPINS = f"{FAULTS}/nginx"
NGINX = "/usr/local/nginx/sbin/nginx"
# How long a slow real server delays its answers unless the fault says (Fault.seconds): past
# the probe's 1 s timeout and the seed's 3 s HTTP_GET timeout, so both notice.
SLOW = 5.0
# The local port of the answerer nginx proxies a faulted real server's requests to (loopback
# only: nothing of the lab reaches it). The build has no rewrite module (no `return`), so a
# 500 or a delay comes from this answerer.
ANSWERER_PORT = 8099
# What each drop-in's answerer does: (HTTP status, delay in seconds; None: the fault's own).
ANSWERS = {"error": (500, 0.0), "slow": (200, None)}
# The processes a pause stops: every one of the service's (keepalived's parent, VRRP and
# checker children; nginx's master and workers), as a frozen machine would.
PAUSABLE = ("keepalived", "nginx")

# keepalived's parent: the keepalived process whose own parent is not keepalived (SIGHUP to
# it reloads; to a child it would kill that child).
PARENT = (
    "for p in $(pidof keepalived); do "
    'q=$(cut -d" " -f4 /proc/$p/stat); '
    '[ "$(cat /proc/$q/comm 2>/dev/null)" = keepalived ] || echo $p; done'
)
# A stopped process's state in /proc/PID/status: "T (stopped)".
STOPPED = "for p in $(pidof {name}); do grep -q '^State:[[:space:]]*T' /proc/$p/status && echo $p; done; true"
# The answerer: the server's own page with a status, after a delay, on loopback.
ANSWERER = (
    "import http.server, time\n"
    "page = open('/usr/local/nginx/html/index.html', 'rb').read()\n"
    "class Answer(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        time.sleep({delay})\n"
    "        self.send_response({status})\n"
    "        self.send_header('Content-Length', str(len(page)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(page)\n"
    "    def log_message(self, *args):\n"
    "        pass\n"
    "http.server.ThreadingHTTPServer(('127.0.0.1', {port}), Answer).serve_forever()\n"
)
# Inside nginx's `location /`: every request (the health check's too) goes to the answerer.
DROPIN = f"proxy_pass http://127.0.0.1:{ANSWERER_PORT};\nproxy_read_timeout 600s;\n"
# A real server answers its own address with 200 within this many seconds once healed.
ANSWER_TIMEOUT = 2


def _service(fault: Fault) -> str:
    """The service a pause stops: keepalived or nginx, as a plain name for a shell line."""
    if fault.service not in PAUSABLE:
        raise UsageError(f"pause: service {fault.service!r} cannot be paused; allowed: {', '.join(PAUSABLE)}")
    return fault.service


def _signal(provider: Provider, fault: Fault, signal: str) -> None:
    name = _service(fault)
    provider.remote.check(provider.alive_node(fault.node), f"pids=$(pidof {name}) && kill -{signal} $pids")


def pause(provider: Provider, fault: Fault) -> None:
    """SIGSTOP every process of the service: the node still answers, the daemon is frozen."""
    _signal(provider, fault, "STOP")


def resume(provider: Provider, fault: Fault) -> None:
    _signal(provider, fault, "CONT")


def paused(provider: Provider, fault: Fault) -> str:
    """A healed pause: none of the service's processes is still stopped (state T)."""
    name = _service(fault)
    stopped = provider.remote.run(fault.node, STOPPED.format(name=name), timeout=10).stdout.split()
    return f"{name} on {fault.node} still stopped (pids {' '.join(stopped)})" if stopped else ""


def reload(provider: Provider, fault: Fault) -> None:
    """SIGHUP to keepalived's parent: it re-reads its configuration, as `systemctl reload` does."""
    provider.remote.check(provider.alive_node(fault.node), f'pids=$({PARENT}) && [ -n "$pids" ] && kill -HUP $pids')


# The configuration file keepalived's parent runs (its -f, else keepalived's default), as $conf.
CONF = (
    f"p=$({PARENT}); "
    "conf=$(tr '\\0' '\\n' < /proc/$p/cmdline | sed -n '/^-f$/{n;p;}'); "
    '[ -n "$conf" ] || conf=/etc/keepalived/keepalived.conf'
)
# Its first real server's weight + 1, mounted over it (the file itself is never written).
REWEIGHTED = f"{FAULTS}/keepalived.conf"


def reweight(provider: Provider, fault: Fault) -> None:
    """Reload keepalived with a change to the virtual server: the first real server's weight
    + 1, in a copy bind-mounted over the file keepalived runs, then SIGHUP."""
    provider.remote.check(
        provider.alive_node(fault.node),
        f"{CONF} && mkdir -p {FAULTS} && (umask 077; "
        """awk '!done && $1 == "weight" {sub(/weight [0-9]+/, "weight " $2 + 1); done = 1} {print}' """
        f'"$conf" > {REWEIGHTED}) && mount --bind {REWEIGHTED} "$conf" && kill -HUP $p',
    )


def unweight(provider: Provider, fault: Fault) -> None:
    """The file as rendered again (the copy unmounted), and keepalived reloaded once more."""
    provider.remote.check(
        provider.alive_node(fault.node), f'{CONF} && umount "$conf" && rm -f {REWEIGHTED} && kill -HUP $p'
    )


def reweighted(provider: Provider, fault: Fault) -> str:
    """A healed reweight: no copy left, none mounted over keepalived's file."""
    script = f'{CONF}; [ -e {REWEIGHTED} ] && echo copy; grep -qF " $conf " /proc/self/mountinfo && echo mounted; true'
    left = provider.remote.run(fault.node, script, timeout=10).stdout.split()
    return f"the reweighted keepalived.conf on {fault.node}: {' '.join(left)}" if left else ""


def delete_vip(provider: Provider, fault: Fault) -> None:
    """Delete every VIP the node holds, as another program would (systemd-networkd on restart)."""
    nic = shlex.quote(provider.lab.vrrp.interface)
    held = provider.remote.check(provider.alive_node(fault.node), f"ip -4 -o addr show dev {nic}")
    vips = [str(vip) for vip in provider.lab.vips if f" {vip}/" in held]
    if not vips:
        raise ProviderError(f"{fault.node} holds none of the VIPs {', '.join(map(str, provider.lab.vips))}")
    provider.remote.check(fault.node, "; ".join(f"ip addr del {vip}/32 dev {nic}" for vip in vips))


def vip_held(provider: Provider, fault: Fault) -> str:
    """Nothing of a deleted VIP remains to heal but its absence: one director holds each VIP."""
    nic = shlex.quote(provider.lab.vrrp.interface)
    held: dict[str, list[str]] = {str(vip): [] for vip in provider.lab.vips}
    for director in provider.lab.role("director"):
        addresses = provider.remote.run(director, f"ip -4 -o addr show dev {nic}", timeout=10).stdout
        for vip, holders in held.items():
            holders.extend([director] if f" {vip}/" in addresses else [])
    wrong = [f"{vip} held by {' and '.join(h) or 'no director'}" for vip, h in held.items() if len(h) != 1]
    return "; ".join(wrong)


def _dropin(kind: str) -> Callable[[Provider, Fault], None]:
    """Apply a real server's drop-in: write it, start what it needs, reload nginx, and wait
    (bounded) until nginx answers with it."""

    def apply(provider: Provider, fault: Fault) -> None:
        node = provider.alive_node(fault.node)
        if provider.lab.nodes[node].role != "realserver":
            raise UsageError(f"realserver-{kind}: {node} is not a real server")
        status, delay = ANSWERS[kind]
        delay = (fault.seconds or SLOW) if delay is None else delay
        program = ANSWERER.format(status=status, delay=delay, port=ANSWERER_PORT)
        steps = [
            f"mkdir -p {NGINX_DROPINS}",
            f"(setsid python3 -c {shlex.quote(program)} </dev/null >/dev/null 2>&1 & echo $! > {FAULTS}/answerer.pid)",
        ]
        steps += [
            # Until the answerer listens (5 s at most; curl's 7: refused): else nginx says 502.
            f"{{ i=0; while [ $i -lt 50 ]; do curl -s -o /dev/null -m 0.2 http://127.0.0.1:{ANSWERER_PORT}/; "
            '[ "$?" != 7 ] && break; sleep 0.1; i=$((i + 1)); done; }',
            f"printf %s {shlex.quote(DROPIN)} > {NGINX_DROPINS}/{kind}.conf",
            f"{NGINX} -t -q && {NGINX} -s reload",
            # Until the new workers answer with the drop-in (5 s at most).
            f"{{ i=0; while [ $i -lt 50 ] && {_answers(node, provider, '0.3')}; do sleep 0.1; i=$((i + 1)); done; }}",
        ]
        provider.remote.check(node, " && ".join(steps))

    return apply


def heal_dropins(provider: Provider, fault: Fault) -> None:
    """Remove every drop-in and the answerer, reload nginx."""
    node = provider.alive_node(fault.node)
    provider.remote.check(
        node,
        f"rm -f {NGINX_DROPINS}/*.conf; "
        f"[ -f {FAULTS}/answerer.pid ] && kill $(cat {FAULTS}/answerer.pid) 2>/dev/null; rm -f {FAULTS}/answerer.pid; "
        f"{NGINX} -s reload",
    )


def dropins_left(provider: Provider, fault: Fault) -> str:
    """A healed drop-in: none left, no answerer, and the server answers 200 at once."""
    node = fault.node
    script = (
        f"ls {NGINX_DROPINS}/ 2>/dev/null; [ -f {FAULTS}/answerer.pid ] && echo answerer.pid; "
        f"i=0; while [ $i -lt 30 ] && ! {_answers(node, provider, str(ANSWER_TIMEOUT))}; do "
        "sleep 0.1; i=$((i + 1)); done; "
        f"{_answers(node, provider, str(ANSWER_TIMEOUT))} || echo 'no 200 answer'"
    )
    left = provider.remote.run(node, script, timeout=30).stdout.split()
    return f"on {node}: {' '.join(left)}" if left else ""


def _answers(node: str, provider: Provider, seconds: str) -> str:
    """A shell test: the node's nginx answers its own address with 200 within seconds."""
    address = provider.lab.nodes[node].address
    return f'[ "$(curl -s -o /dev/null -m {seconds} -w %{{http_code}} http://{address}/)" = 200 ]'


def _nothing(provider: Provider, fault: Fault) -> None:
    return None


def _none_left(provider: Provider, fault: Fault) -> str:
    return ""


# name -> (applied, healed, apply, heal, remains): halab.providers.faults makes them Primitives.
VERBS: dict[str, tuple[str, str, Callable, Callable, Callable]] = {
    "pause": ("pause {service} on {node}", "resume {service} on {node}", pause, resume, paused),
    "reload": ("reload keepalived on {node}", "nothing to undo", reload, _nothing, _none_left),
    "reweight": (
        "reload keepalived on {node} with a weight changed",
        "reload keepalived on {node} as rendered",
        reweight,
        unweight,
        reweighted,
    ),
    "vip-deleted": ("delete the VIP from {node}", "nothing to undo", delete_vip, _nothing, vip_held),
    "realserver-error": (
        "make nginx on {node} answer 500",
        "remove the 500 from {node}",
        _dropin("error"),
        heal_dropins,
        dropins_left,
    ),
    "realserver-slow": (
        "delay {node}'s answers",
        "remove the delay from {node}",
        _dropin("slow"),
        heal_dropins,
        dropins_left,
    ),
}
