"""The measuring end on the client node: standard library only, Python 3.6 and later.

It runs on the lab's client (a local-lab guest, a Vagrant VM, a cloud instance) as
`python3 -c <this file> COMMAND ...`, sent over the lab's ssh_config by halab.prove.probe,
so nothing has to be installed there first. It prints JSON, one object per line.

  http     requests to the VIP(s) at a fixed rate, each on a new connection (so the
           scheduler sees every one), each recorded with send/finish times, the page
           that answered and the VIP's MAC in the client's ARP table at that moment;
           bounded by --count and --duration, and ended early by closing stdin.
           With --hold N it also keeps N HTTP/1.1 keep-alive connections open per VIP,
           each sending a request every --hold-interval s, and records every connection
           once it ends: when it opened, its stalls, how it ended (reset, closed, still
           open at the probe's end); a slot whose connection ended opens another.
  arp      who answers an ARP request for an address: the MACs of every reply.
  capture  N sequential requests while capturing the client's own frames: the MACs
           the requests went to and the MACs the replies came from (DR evidence).
  mcast    send datagrams to a multicast group, or count those that arrive: does the
           lab switch carry multicast (VRRP's 224.0.0.18) between two nodes?
  listen   on a real server, for a few seconds: the connection openings (SYNs) to a port
           that arrive, plain or wrapped in IP-in-IP, with their client's address, and for
           the wrapped ones the MAC and address of the node that wrapped them (NAT/TUN evidence).
  neigh    watch this node's ARP entry for an address and print each change of MAC, with
           its time, until stdin closes (a NAT real server following its gateway).
  vrrp     on a director: whether it holds each VIP, sampled --rate times a second, printed
           on each change, and every VRRP advert its lab interface sends or receives (source,
           VRID, priority), until stdin closes: split brain as the directors lived it.
"""

import argparse
import json
import select
import socket
import struct
import sys
import threading
import time

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ETH_P_ALL = 0x0003
MAX_IN_FLIGHT = 64
MAX_HOLD = 64  # held connections per VIP
MAX_LIVES = 100  # connections one held slot may open in a run
STALL = 0.3  # seconds: a wait for a reply on a held connection longer than this is a stall
POLL = 0.25  # seconds: how often a held connection waiting for its reply looks at the stop signal


class Stopped(Exception):
    """The probe ended while a held connection waited for its reply."""


class GaveUp(Exception):
    """A held connection had no reply for --stall-limit seconds."""


EMITTING = threading.Lock()
ENDED = threading.Event()


def emit(record, last=False):
    """One JSON line, whole, even from several threads. Nothing after the last one: a daemon
    thread still writing while the interpreter shuts down aborts it (_enter_buffered_busy)."""
    with EMITTING:
        if ENDED.is_set():
            return
        sys.stdout.write(json.dumps(record, sort_keys=True) + "\n")
        sys.stdout.flush()
        if last:
            ENDED.set()


def neighbor(address):
    """The MAC the client's ARP table holds for address now ("" when it has none)."""
    with open("/proc/net/arp") as table:
        for line in table.read().splitlines()[1:]:
            fields = line.split()
            if fields and fields[0] == address and fields[2] != "0x0":
                return fields[3]
    return ""


def fetch(host, port, timeout):
    """One HTTP/1.0 GET on a fresh connection; the body's first line, or raises OSError."""
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.settimeout(timeout)
        conn.sendall(("GET / HTTP/1.0\r\nHost: %s\r\n\r\n" % host).encode())
        chunks = []
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    if " 200 " not in status + " ":
        raise OSError("HTTP status: %s" % status)
    return body.decode(errors="replace").strip().splitlines()[0] if body.strip() else ""


def receive(conn, stop, deadline):
    """The next bytes of a held connection; waits through a stall until stop or deadline."""
    while True:
        try:
            chunk = conn.recv(65536)
        except socket.timeout:
            if stop.is_set():
                raise Stopped() from None
            if time.time() > deadline:
                raise GaveUp() from None
            continue
        if not chunk:
            raise EOFError("closed by the server")
        return chunk


def response(conn, buffer, stop, deadline):
    """One HTTP/1.1 response on a kept-alive connection: (status line, body, server closes
    after it, bytes left over)."""
    while b"\r\n\r\n" not in buffer:
        buffer += receive(conn, stop, deadline)
    head, _, buffer = buffer.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    length = int(headers.get("content-length", "0"))
    while len(buffer) < length:
        buffer += receive(conn, stop, deadline)
    return lines[0], buffer[:length], headers.get("connection") == "close", buffer[length:]


def keep(slot, life, conn, host, args, stop):
    """Requests on one open connection every --hold-interval until the probe ends or the
    connection does; one record for its whole life."""
    request = ("GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % host).encode()
    record = {"conn": slot, "life": life, "target": host, "opened": time.time(), "outcome": "open", "error": ""}
    record.update(responses=0, page="", stalls=[])
    last = record["opened"]
    buffer = b""
    conn.settimeout(POLL)
    try:
        while not stop.is_set():
            sent = time.time()
            conn.sendall(request)
            status, body, closing, buffer = response(conn, buffer, stop, sent + args.stall_limit)
            now = time.time()
            if now - last > STALL:
                record["stalls"].append([last, now])
            if " 200 " not in status + " ":
                raise ValueError("HTTP status: %s" % status)
            last = now
            record["responses"] += 1
            record["page"] = record["page"] or body.decode(errors="replace").strip().split("\n")[0]
            if closing:
                record.update(outcome="closed", error="the server closed it after a response")
                break
            stop.wait(max(0.0, sent + args.hold_interval - time.time()))
    except Stopped:
        pass
    except GaveUp:
        record.update(outcome="stalled", error="no reply for %g s" % args.stall_limit)
    except ConnectionResetError as exc:
        record.update(outcome="reset", error=type(exc).__name__ + ": " + str(exc))
    except EOFError as exc:
        record.update(outcome="closed", error=str(exc))
    except (OSError, ValueError) as exc:
        record.update(outcome="error", error=type(exc).__name__ + ": " + str(exc))
    record.update(last_ok=last, ended=time.time())
    emit(record)


def hold(slot, host, port, args, stop):
    """One held slot: a keep-alive connection, another one whenever it ends (bounded)."""
    life = 0
    while not stop.is_set() and life < MAX_LIVES:
        try:
            conn = socket.create_connection((host, port), timeout=args.timeout)
        except OSError:
            stop.wait(0.2)  # not established: not a connection to judge; try again
            continue
        life += 1
        with conn:
            keep(slot, life, conn, host, args, stop)
        stop.wait(0.1)


def one_request(seq, host, port, timeout):
    sent = time.time()
    record = {"seq": seq, "target": host, "sent": sent, "mac": neighbor(host)}
    try:
        record.update(ok=True, page=fetch(host, port, timeout))
    except (OSError, ValueError) as exc:
        record.update(ok=False, error=type(exc).__name__ + ": " + str(exc))
    record["done"] = time.time()
    emit(record)


def until_stdin_closes():
    """An event set once the controlling side closes our stdin (the probe's end signal)."""
    stop = threading.Event()
    threading.Thread(target=stdin_closed, args=(stop,), daemon=True).start()
    return stop


def stdin_closed(stop):
    """Set stop when the controlling side closes our stdin (the probe's end signal)."""
    try:
        while sys.stdin.buffer.read1(4096) if hasattr(sys.stdin.buffer, "read1") else sys.stdin.read(1):
            pass
    except OSError:
        pass
    stop.set()


def http(args):
    targets = [(t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1])) for t in args.target]
    interval = 1.0 / args.rate
    stop = until_stdin_closes()
    start = time.time()
    emit({"event": "start", "time": start, "rate": args.rate, "targets": args.target})
    holders = []
    for index in range(min(args.hold, MAX_HOLD)):
        for number, (host, port) in enumerate(targets):
            slot = index * len(targets) + number
            holders.append(threading.Thread(target=hold, args=(slot, host, port, args, stop), daemon=True))
            holders[-1].start()
    seq = 0
    workers = []  # type: list[threading.Thread]
    while seq < args.count and time.time() - start < args.duration and not stop.is_set():
        tick = start + (seq // len(targets)) * interval
        for host, port in targets:
            workers = [w for w in workers if w.is_alive()]
            if len(workers) >= MAX_IN_FLIGHT:
                now = time.time()
                emit(
                    {
                        "seq": seq,
                        "target": host,
                        "sent": now,
                        "done": now,
                        "ok": False,
                        "mac": "",
                        "error": "probe saturated: %d requests in flight" % MAX_IN_FLIGHT,
                    }
                )
            else:
                worker = threading.Thread(target=one_request, args=(seq, host, port, args.timeout), daemon=True)
                worker.start()
                workers.append(worker)
            seq += 1
        delay = tick + interval - time.time()
        if delay > 0:
            stop.wait(delay)
    stop.set()
    for worker in workers:
        worker.join(args.timeout + 1)
    for holder in holders:
        holder.join(POLL + args.timeout + 1)
    emit({"event": "end", "time": time.time(), "requests": seq}, last=True)


def mac_text(raw):
    return ":".join("%02x" % b for b in raw)


def arp(args):
    """Broadcast one ARP request per --count, collect replies for --wait seconds."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    sock.bind((args.iface, ETH_P_ARP))
    own_mac = sock.getsockname()[4]
    own_ip = socket.inet_aton(args.source)
    target = socket.inet_aton(args.ip)
    request = (
        b"\xff" * 6
        + own_mac
        + struct.pack("!H", ETH_P_ARP)
        + struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, 1)
        + own_mac
        + own_ip
        + b"\x00" * 6
        + target
    )
    replies = {}  # type: dict[str, int]
    for _ in range(args.count):
        sock.send(request)
        deadline = time.time() + args.wait / args.count
        while time.time() < deadline:
            ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.time()))
            if not ready:
                continue
            frame = sock.recv(2048)
            op, sender_mac, sender_ip = struct.unpack("!H", frame[20:22])[0], frame[22:28], frame[28:32]
            if op == 2 and sender_ip == target:
                replies[mac_text(sender_mac)] = replies.get(mac_text(sender_mac), 0) + 1
    emit({"ip": args.ip, "replies": replies})


def capture(args):
    """Requests one after another, then read back every frame of theirs the client saw."""
    host, port = args.target.rsplit(":", 1)[0], int(args.target.rsplit(":", 1)[1])
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((args.iface, ETH_P_ALL))
    pages = []
    for _ in range(args.count):
        try:
            pages.append(fetch(host, port, args.timeout))
        except OSError as exc:
            pages.append("FAILED: %s" % exc)
    vip = socket.inet_aton(host)
    sent_to = {}  # type: dict[str, int]
    replied_from = {}  # type: dict[str, int]
    sock.setblocking(False)
    while True:
        try:
            frame = sock.recv(65535)
        except BlockingIOError:
            break
        if len(frame) < 38 or struct.unpack("!H", frame[12:14])[0] != ETH_P_IP or frame[23] != 6:
            continue
        header = (frame[14] & 0x0F) * 4
        src_port, dst_port = struct.unpack("!HH", frame[14 + header : 18 + header])
        if frame[30:34] == vip and dst_port == port:
            key = mac_text(frame[0:6])
            sent_to[key] = sent_to.get(key, 0) + 1
        elif frame[26:30] == vip and src_port == port:
            key = mac_text(frame[6:12])
            replied_from[key] = replied_from.get(key, 0) + 1
    emit({"target": args.target, "pages": pages, "requests_to": sent_to, "replies_from": replied_from})


IPPROTO_IPIP = 4
IPPROTO_TCP = 6
TCP_SYN = 0x02


def listen(args):
    """Count SYNs to --port arriving on --iface for --wait seconds, or until stdin closes: by
    client address, and for IP-in-IP (protocol 4) frames also by the wrapper's MAC and outer
    source address."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((args.iface, ETH_P_ALL))
    emit({"event": "listening", "iface": args.iface})
    stop = until_stdin_closes()
    clients = {}  # type: dict[str, int]
    wrapped = {}  # type: dict[str, int]
    deadline = time.time() + args.wait
    while not stop.is_set() and time.time() < deadline:
        ready, _, _ = select.select([sock], [], [], max(0.0, min(POLL, deadline - time.time())))
        if not ready:
            continue
        frame, meta = sock.recvfrom(65535)
        if meta[2] == socket.PACKET_OUTGOING or len(frame) < 34 or struct.unpack("!H", frame[12:14])[0] != ETH_P_IP:
            continue
        outer = frame[14:]
        packet, wrapper = outer, None
        if outer[9] == IPPROTO_IPIP:
            packet = outer[(outer[0] & 0x0F) * 4 :]
            wrapper = "%s %s" % (mac_text(frame[6:12]), socket.inet_ntoa(outer[12:16]))
        if len(packet) < 20 or packet[9] != IPPROTO_TCP:
            continue
        header = (packet[0] & 0x0F) * 4
        if len(packet) < header + 14:
            continue
        dst_port, flags = struct.unpack("!H", packet[header + 2 : header + 4])[0], packet[header + 13]
        if dst_port != args.port or not flags & TCP_SYN:
            continue
        client = socket.inet_ntoa(packet[12:16])
        clients[client] = clients.get(client, 0) + 1
        if wrapper:
            wrapped[wrapper] = wrapped.get(wrapper, 0) + 1
    emit({"iface": args.iface, "port": args.port, "syn_from": clients, "ipip_from": wrapped})


def neigh(args):
    """Each change of this node's ARP entry for --ip, with the time it was seen (polled every
    --interval s), until stdin closes or --duration passes."""
    stop = until_stdin_closes()
    emit({"event": "start", "at": time.time()})
    seen, deadline = None, time.time() + args.duration
    while not stop.is_set() and time.time() < deadline:
        mac = neighbor(args.ip)
        if mac != seen:
            emit({"ip": args.ip, "mac": mac, "at": time.time()})
            seen = mac
        stop.wait(args.interval)


def holds(address):
    """Whether address is one of this node's own: binding to it succeeds only then (the
    directors leave ip_nonlocal_bind off; the agent refuses to run where it is on)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((address, 0))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def adverts(iface, stop, out):
    """Every VRRP packet (IP protocol 112) on iface, either way, until stop: one record each
    (a cooked packet socket: each packet from its IP header, seen before any firewall)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    sock.bind((iface, ETH_P_IP))
    sock.settimeout(POLL)
    while not stop.is_set():
        try:
            frame, where = sock.recvfrom(2048)
        except socket.timeout:
            continue
        header = (frame[0] & 0x0F) * 4
        if len(frame) < header + 4 or frame[9] != 112:
            continue
        out(
            {
                "at": time.time(),
                "src": socket.inet_ntoa(frame[12:16]),
                "vrid": frame[header + 1],
                "prio": frame[header + 2],
                "sent": where[2] == socket.PACKET_OUTGOING,
            }
        )


def vrrp(args):
    """VIP presence on each change (sampled --rate times a second) and every advert, until
    stdin closes or --duration passes."""
    with open("/proc/sys/net/ipv4/ip_nonlocal_bind") as setting:
        if setting.read().strip() != "0":
            sys.exit("ip_nonlocal_bind is on: binding cannot tell whether a VIP is here")
    stop = until_stdin_closes()
    threading.Thread(target=adverts, args=(args.iface, stop, emit), daemon=True).start()
    emit({"event": "start", "at": time.time()})
    held = {}  # type: dict
    deadline = time.time() + args.duration
    while not stop.is_set() and time.time() < deadline:
        for vip in args.vip:
            now = holds(vip)
            if held.get(vip) != now:
                emit({"vip": vip, "present": now, "at": time.time()})
                held[vip] = now
        stop.wait(1.0 / args.rate)
    emit({"event": "end", "at": time.time()}, last=True)


def mcast(args):
    """--listen: join the group on the interface's address and count datagrams for --wait s
    (or until stdin closes);
    otherwise send --count datagrams to it (TTL 1: link-local, as VRRP's adverts are)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    if args.listen:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("", args.port))
        membership = socket.inet_aton(args.group) + socket.inet_aton(args.source)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        emit({"event": "listening", "group": args.group, "port": args.port})
        stop = until_stdin_closes()
        received, deadline = 0, time.time() + args.wait
        while not stop.is_set() and time.time() < deadline:
            ready, _, _ = select.select([sock], [], [], max(0.0, min(POLL, deadline - time.time())))
            if ready:
                sock.recv(2048)
                received += 1
        emit({"group": args.group, "received": received})
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(args.source))
        for index in range(args.count):
            sock.sendto(b"halab multicast probe %d" % index, (args.group, args.port))
            time.sleep(0.1)
        emit({"group": args.group, "sent": args.count})


def main(argv=None):
    parser = argparse.ArgumentParser(prog="agent", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command")
    probe = commands.add_parser("http", help="requests at a fixed rate, each recorded")
    probe.add_argument("--target", action="append", required=True, help="VIP:PORT; repeat for several")
    probe.add_argument("--rate", type=float, default=20.0, help="request rounds per second")
    probe.add_argument("--count", type=int, default=12000, help="stop after this many requests")
    probe.add_argument("--duration", type=float, default=300.0, help="stop after this many seconds")
    probe.add_argument("--timeout", type=float, default=1.0, help="per request, seconds")
    probe.add_argument("--hold", type=int, default=0, help="keep-alive connections held per VIP (at most 64)")
    probe.add_argument("--hold-interval", type=float, default=0.1, help="seconds between a held connection's requests")
    probe.add_argument("--stall-limit", type=float, default=30.0, help="give a held connection up after this long")
    who = commands.add_parser("arp", help="the MACs that answer ARP for an address")
    who.add_argument("--ip", required=True)
    who.add_argument("--source", required=True, help="this node's own address")
    who.add_argument("--iface", required=True, help="the lab's interface (eth1 on Vagrant VMs)")
    who.add_argument("--count", type=int, default=3)
    who.add_argument("--wait", type=float, default=1.5)
    cap = commands.add_parser("capture", help="requests while capturing: where they went, who replied")
    cap.add_argument("--target", required=True, help="VIP:PORT")
    cap.add_argument("--iface", required=True, help="the lab's interface (eth1 on Vagrant VMs)")
    cap.add_argument("--count", type=int, default=10)
    cap.add_argument("--timeout", type=float, default=2.0)
    group = commands.add_parser("mcast", help="send to, or count arrivals on, a multicast group")
    group.add_argument("--group", default="224.0.0.18", help="default: VRRP's own group")
    group.add_argument("--port", type=int, default=4242)
    group.add_argument("--source", required=True, help="this node's own address (picks the interface)")
    group.add_argument("--listen", action="store_true")
    group.add_argument("--wait", type=float, default=4.0)
    group.add_argument("--count", type=int, default=10)
    heard = commands.add_parser("listen", help="SYNs to a port arriving here, plain or IP-in-IP, for a while")
    heard.add_argument("--iface", required=True)
    heard.add_argument("--port", type=int, required=True)
    heard.add_argument("--wait", type=float, default=5.0)
    watch = commands.add_parser("neigh", help="each change of this node's ARP entry for an address")
    watch.add_argument("--ip", required=True)
    watch.add_argument("--interval", type=float, default=0.05)
    watch.add_argument("--duration", type=float, default=600.0)
    lived = commands.add_parser("vrrp", help="a director's VIPs (each change) and the adverts it sends and hears")
    lived.add_argument("--vip", action="append", required=True, help="repeat for several")
    lived.add_argument("--iface", required=True, help="the lab's interface (eth1 on Vagrant VMs)")
    lived.add_argument("--rate", type=float, default=20.0, help="presence samples per second")
    lived.add_argument("--duration", type=float, default=900.0)
    args = parser.parse_args(argv)
    handlers = {
        "http": http,
        "arp": arp,
        "capture": capture,
        "mcast": mcast,
        "listen": listen,
        "neigh": neigh,
        "vrrp": vrrp,
    }
    if args.command not in handlers:
        parser.error("a command is required: " + ", ".join(handlers))
    handlers[args.command](args)


if __name__ == "__main__":
    main()
