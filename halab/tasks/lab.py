"""`invoke lab.*`: describe, render, boot, inspect and tear down a lab."""

from __future__ import annotations

import re
from pathlib import Path

from halab import build, configtest, environment, inventory, providers, render, spec, stopwatch
from halab.errors import BuildError, ProviderError, SpecError, UsageError, shown
from halab.imports import mapping, table
from halab.paths import LabPaths, checked_name
from halab.prove import topology
from halab.providers import Provider
from halab.remote import Remote
from halab.spec import Lab
from halab.tasks import LAB_HELP, PROVIDER_HELP, existing_file, key_values, load, output_file, provider_for, task

# A file a --file option may place: one of keepalived's directory, plain names (spec.GuestPath).
GUEST_FILE = r"/etc/keepalived(?:/[A-Za-z0-9_][A-Za-z0-9._-]{0,63}){1,4}"


class ImportRefused(UsageError):
    """Nothing runnable came of an import: the table above says why (exit 2)."""


RUNNING_HINT = (
    "a lab that runs is stopped by its name whatever its file says: `invoke lab.down --name NAME` "
    "(`invoke lab.status --all` lists them)"
)


@task(help=LAB_HELP)
def validate(c, lab=None):
    """Check a lab file against every rule; print every problem, or a one-screen summary of the lab."""
    summary(load(lab))


def summary(model: Lab) -> None:
    """A valid lab on one screen: its nodes, roles and services."""
    print(f"lab {model.name!r}: valid ({model.mode}, subnet {model.subnet})")
    for name, node in model.nodes.items():
        extra = f" {node.state} priority {node.priority}" if node.role == "director" else ""
        print(f"  {name:<10} {node.address!s:<15} {node.role}{extra}")
    for service in model.virtual_services:
        servers = ", ".join(f"{n} (weight {s.weight})" for n, s in service.real_servers.items())
        print(f"  VIP {service.vip}:{service.port}/{service.protocol} {service.lb_algo}/{service.lb_kind} -> {servers}")


@task(
    name="render", help={**LAB_HELP, "config_test": "also run keepalived -t / nginx -t (the lab's builds) on the files"}
)
def render_(c, lab=None, config_test=False):
    """Render every node's files into the lab's state directory."""
    rendered(load(lab), config_test)


def rendered(model: Lab, config_test: bool) -> None:
    """Write the lab's files and, if asked, put them through the daemons' own config tests."""
    target = LabPaths(model.name).rendered
    written = render.write(render.render(model), target)
    print(f"rendered {len(written)} files for lab {model.name!r} into {target}")
    if not config_test:
        return
    binary = {name: found.binary for name, found in build.built(model.versions.model_dump()).items()}
    verdicts = [
        configtest.keepalived(p, binary["keepalived"], configtest.interfaces(model))
        for p in written
        if p.name == "keepalived.conf"
    ]
    verdicts += [configtest.nginx(p, binary["nginx"]) for p in written if p.name == "nginx.conf"]
    for verdict in verdicts:
        print(
            f"  {'ok  ' if verdict.ok else 'FAIL'} {verdict.path}" + (f"\n{verdict.output}" if verdict.output else "")
        )
    if not all(v.ok for v in verdicts):
        raise BuildError("a rendered file failed its daemon's config test")


@task(help={**LAB_HELP, **PROVIDER_HELP})
def doctor(c, lab=None, provider="local"):
    """Check this host can run the lab, each failed item with its fix.

    local: root, user-mode Linux and IPVS, namespaces, tools, builds; vagrant: vagrant,
    a hypervisor plugin, the box.
    """
    items = provider_for(lab, provider).preflight()
    for item in items:
        print(f"  {'ok  ' if item.met else 'FAIL'} {item.name}" + ("" if item.met else f"\n       fix: {item.fix}"))
    if not all(item.met for item in items):
        raise UsageError(f"this host is not ready for the {provider} lab (see the fixes above)")


@task(
    help={
        **LAB_HELP,
        **PROVIDER_HELP,
        "keep": "on failure, leave what started running for debugging",
        "no_build": "do not compile missing keepalived/nginx builds (the preflight then names them)",
        "recreate": "if the lab is up from another version of its file, tear it down and boot it as the file is now",
    }
)
def up(c, lab=None, keep=False, provider="local", no_build=False, recreate=False):
    """Boot the lab, compiling its keepalived and nginx first when missing (cached).

    Then the preflight, then the nodes; on failure, show the node's console and tear down.
    A lab already up from the same file is left as it is; one whose file changed since it
    booted is refused with the changes listed (--recreate boots it again from the file).
    """
    running = provider_for(lab, provider, stopwatch.timed())
    if not no_build:
        running.prepare(lab_given=lab is not None)
    running.up(keep=keep, recreate=recreate)
    director = next(iter(running.lab.role("director")))
    print(f"ssh: {' '.join(running.remote.argv(director))}   (or: invoke lab.ssh {director})")
    _print_status(running)


@task(
    help={
        **LAB_HELP,
        **PROVIDER_HELP,
        "name": "the lab's name, when its file is gone (default: the lab file's name)",
        "all_": "every lab of this checkout, on every provider",
        "orphans": "local-lab namespaces and guests left by checkouts that no longer exist",
    }
)
def down(c, lab=None, name=None, provider="local", all_=False, orphans=False):
    """Stop every node and remove what the lab made on this host; idempotent, works after a crash."""
    if orphans:
        removed = providers.remove_orphans()
        print("\n".join([*(f"removed {what}" for what in removed), f"{len(removed)} orphan lab(s) removed"]))
        return
    if all_:
        for lab_name in providers.checkout_labs():
            providers.down_everywhere(lab_name)
            print(f"lab {lab_name!r} is down")
        return
    lab_name = _name(lab, name)
    found = providers.kind(provider).footprint(LabPaths(lab_name))
    providers.kind(provider).down_by_name(lab_name)
    print(f"lab {lab_name!r} is down" + ("" if found else " (nothing of it was on this host)"))


def _name(lab: str | None, name: str | None) -> str:
    """The lab lab.down stops: --name, else the lab file's; a file that no longer validates
    must not keep a running lab alive, so its error says how to stop the lab by name."""
    if name is not None:
        return checked_name(name)
    try:
        return load(lab).name
    except SpecError as exc:
        raise SpecError(exc.source, exc.problems, RUNNING_HINT) from None
    except UsageError as exc:
        raise UsageError(f"{exc}; {RUNNING_HINT}") from None


@task(help={**LAB_HELP, **PROVIDER_HELP, "all_": "a line per lab of this checkout: its guests and namespace"})
def status(c, lab=None, provider="local", all_=False):
    """A table of the lab's nodes: role, address, up/down, VRRP state and VIPs held."""
    if all_:
        print(f"{'lab':<16} on this host")
        for lab_name in providers.checkout_labs():
            print(f"{lab_name:<16} {providers.footprint(lab_name) or '-'}")
        return
    _print_status(provider_for(lab, provider))


def _print_status(running: Provider) -> None:
    """The status table, each column as wide as its widest cell (a cut link reads `unreachable`)."""
    lines = [("node", "role", "address", "state", "vrrp", "vips")]
    lines += [
        (row.name, row.role, row.address, "up" if row.up else "down", row.vrrp, " ".join(row.vips) or "-")
        for row in running.status()
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


@task(
    help={
        **LAB_HELP,
        **PROVIDER_HELP,
        "format_": f"{', '.join(topology.FORMATS)}: text prints here (default), the others are written "
        "into the lab's artifacts directory",
    }
)
def show(c, lab=None, provider="local", format_="text"):
    """Draw the lab: nodes, VIPs, the switch and which way requests and replies flow.

    From the lab file: each node's role and address, each director's VRRP state and
    priority, the VIPs and their VRIDs. When the lab runs, also who holds which VIP now
    and each VIP's IPVS members with their weights and connection counts.
    """
    if format_ not in topology.FORMATS:
        raise UsageError(f"--format must be one of {', '.join(topology.FORMATS)}; got {format_!r}")
    running = provider_for(lab, provider)
    now = topology.live(running)
    if format_ == "text":
        print(topology.text(running.lab, now))
        return
    target = running.paths.artifacts / f"topology.{format_}"
    if format_ == "dot":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(topology.dot(running.lab, now))
    else:
        topology.draw(running.lab, now, target)
    print(f"wrote {target}")


@task(
    name="inventory",
    help={
        **LAB_HELP,
        "format_": f"{' or '.join(inventory.FORMATS)} (default: ini)",
        "output": "write it to this file instead of printing it",
    },
)
def inventory_(c, lab=None, format_="ini", output=None):
    """Print an Ansible inventory of the lab: hosts grouped by role, with their VRRP and VIPs.

    `ansible-inventory --list -i FILE` reads it; so the lab file that drives the local lab
    also describes real hosts (set ansible_user and the like in your own group_vars).
    """
    if format_ not in inventory.FORMATS:
        raise UsageError(f"--format must be one of {', '.join(inventory.FORMATS)}; got {format_!r}")
    target = output_file(output, "output") if output is not None else None
    text = inventory.FORMATS[format_](load(lab))
    if target:
        target.write_text(text)
        print(f"wrote {target}")
    else:
        print(text, end="")


@task(help={**LAB_HELP, **PROVIDER_HELP, "node": "node name", "lines": "how many lines of each log"})
def logs(c, node, lab=None, provider="local", lines=40):
    """Show the logs this host keeps of a node, even when it is down.

    local: the guest's console, boot, keepalived and nginx logs; vagrant: QEMU's log of the VM.
    """
    running = provider_for(lab, provider)
    running.lab.known(node)
    kept = [log for log in running.host_logs(node) if log.exists()]
    if not kept:
        raise UsageError(f"no logs for node {node!r}: was lab {running.lab.name!r} ever up on the {provider} provider?")
    for log in kept:
        print(f"==> {log} <==")
        print("\n".join(log.read_text(errors="replace").splitlines()[-int(lines) :]))


@task(help={**LAB_HELP, "node": "node name"})
def ssh(c, node, lab=None):
    """ssh into a node, or run a command there (anything after `--`).

    invoke lab.ssh server3 -- ipvsadm -Ln
    """
    model = load(lab)
    model.known(node)
    config = LabPaths(model.name).ssh_config
    if not config.exists() or not providers.footprint(model.name):
        raise ProviderError(f"lab {model.name!r} is not up on this host: `invoke lab.up` first")
    Remote(config).login(node, [c.remainder] if c.remainder else [])


@task(
    name="import",
    iterable=["file"],
    help={
        "conf": "keepalived.conf files, comma-separated: one per director, or one for all (then @id lines "
        "or a derived peer)",
        "output": "the lab file to write (default: <name>.yaml here)",
        "name": "the lab's name (default: imported)",
        "realserver_setup": "a script each real server runs with `start` instead of halab's DR/TUN/NAT setup",
        "nginx_conf": "an nginx.conf each real server runs",
        "file": "GUEST_PATH=LOCAL_PATH: a file the config refers to (a vrrp_script, notify, MISC_CHECK); repeatable",
    },
)
def import_(c, conf, output=None, name="imported", realserver_setup=None, nginx_conf=None, file=None):
    """Make a lab whose directors run your keepalived.conf files verbatim, and print the mapping.

    The table: each thing found, what the lab does with it, what it cannot bring and what
    that does. Exit 0 when a lab was written, 2 when nothing runnable could be made.
    """
    imported(conf, output, name, realserver_setup, nginx_conf, file or [])


def imported(
    conf: str, output: str | None, name: str, setup: str | None, nginx_conf: str | None, files: list[str]
) -> None:
    """The import behind `lab.import` (see there)."""
    if not conf.strip():
        raise UsageError("--conf '': lab.import needs one or more keepalived.conf files, comma-separated")
    confs = [existing_file(part, "conf", "keepalived.conf files, comma-separated") for part in conf.split(",")]
    lab_name = checked_name(name)
    pairs = key_values(files, "--file", "GUEST_PATH=LOCAL_PATH")
    for guest in pairs:
        if not guest.startswith("/etc/keepalived/") or not re.fullmatch(GUEST_FILE, guest):
            raise UsageError(
                f"--file {shown(guest)}=...: not a file under /etc/keepalived/ (1 to 4 parts below it, each a "
                "letter, digit or _, then up to 63 of A-Z a-z 0-9 . _ -)"
            )
    extra = {
        guest: existing_file(local, "file", "GUEST_PATH=LOCAL_PATH, an existing file") for guest, local in pairs.items()
    }
    if setup is not None:
        existing_file(setup, "realserver_setup", "the real servers' setup script")
    if nginx_conf is not None:
        existing_file(nginx_conf, "nginx_conf", "an nginx.conf for the real servers")
    target = output_file(output, "output") if output is not None else Path(f"{lab_name}.yaml")
    if target.exists():  # as root, an existing file (a lab, /etc/passwd) would be lost
        raise UsageError(f"--output {shown(str(target))}: the file exists; give a new one (labs/mine.yaml)")
    version = spec.version_overrides().get("keepalived", spec.Versions().keepalived)
    binary = build.built({"keepalived": version})["keepalived"].binary
    result = mapping.build(
        confs, binary, lab_name, Path(setup) if setup else None, Path(nginx_conf) if nginx_conf else None, extra
    )
    if result.lab is not None:
        try:
            mapping.write(result, target, LabPaths(lab_name).imported)
        except mapping.NotRunnable as exc:
            result.add("the lab", "not written", str(exc))
            result.lab = None
    print(table.text(result.rows))
    if result.lab is None:
        raise ImportRefused("nothing runnable could be made from it (see the table); no lab was written")
    boot = f"{environment.launcher()} lab.up --lab {target}"
    print(f"wrote {target} (files run verbatim: {LabPaths(lab_name).imported}); boot it: {boot}")
