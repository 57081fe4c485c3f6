"""`invoke lab.*`: describe, render and (later) run a lab."""

from __future__ import annotations

import os

from invoke import Exit, task

from halab import build, configtest, render, sources, spec
from halab.paths import LabPaths
from halab.problems import SpecError
from halab.providers.base import ProviderError
from halab.providers import make
from halab.providers.base import Provider
from halab.providers.local import teardown

LAB_HELP = {"lab": "lab file (YAML); default: labs/seed.yaml, the write-up's lab"}
PROVIDER_HELP = {"provider": "local (default: user-mode Linux on this host) or vagrant (libvirt/VirtualBox VMs)"}


def load(path: str | None) -> spec.Lab:
    """The lab model, or a clean exit listing every problem of the file."""
    try:
        return spec.load(path)
    except SpecError as exc:
        raise Exit(str(exc), code=2) from None


@task(help=LAB_HELP)
def validate(c, lab=None):
    """Check a lab file; print every problem, or a one-screen summary of the lab."""
    model = load(lab)
    print(f"lab {model.name!r}: valid ({model.mode}, subnet {model.subnet})")
    for name, node in model.nodes.items():
        extra = f" {node.state} priority {node.priority}" if node.role == "director" else ""
        print(f"  {name:<10} {str(node.address):<15} {node.role}{extra}")
    for service in model.virtual_services:
        servers = ", ".join(f"{n} (weight {s.weight})" for n, s in service.real_servers.items())
        print(f"  VIP {service.vip}:{service.port}/{service.protocol} {service.lb_algo}/{service.lb_kind} -> {servers}")


@task(name="render", help={**LAB_HELP, "check": "also run keepalived -t / nginx -t (the lab's builds) on the files"})
def render_(c, lab=None, check=False):
    """Render every node's files into the lab's state directory."""
    model = load(lab)
    target = LabPaths(model.name).rendered
    written = render.write(render.render(model), target)
    print(f"rendered {len(written)} files for lab {model.name!r} into {target}")
    if check:
        binary = {name: _built(name, version).binary for name, version in model.versions.model_dump().items()}
        verdicts = [configtest.keepalived(p, binary["keepalived"], model.vrrp.interface) for p in written
                    if p.name == "keepalived.conf"]
        verdicts += [configtest.nginx(p, binary["nginx"]) for p in written if p.name == "nginx.conf"]
        for verdict in verdicts:
            print(f"  {'ok  ' if verdict.ok else 'FAIL'} {verdict.path}" + (f"\n{verdict.output}" if verdict.output else ""))
        if not all(v.ok for v in verdicts):
            raise Exit("a rendered file failed its daemon's config test", code=1)


def _built(name: str, version: str) -> build.Build:
    """The host build of a pinned version, or a clean exit saying how to make it."""
    found = build.find(sources.pin(name, version))
    if not found:
        raise Exit(f"{name} {version} is not built on this host yet: run `invoke build` first", code=1)
    return found


def provider(lab: str | None, name: str = "local") -> Provider:
    try:
        return make(load(lab), name)
    except ProviderError as exc:
        raise Exit(str(exc), code=2) from None


@task(help={**LAB_HELP, **PROVIDER_HELP})
def doctor(c, lab=None, provider_="local"):
    """Check this host can run the lab (local: root, user-mode Linux and IPVS, namespaces, tools,
    builds; vagrant: vagrant, a hypervisor plugin, the box)."""
    checks = provider(lab, provider_).preflight()
    for check in checks:
        print(f"  {'ok  ' if check.ok else 'FAIL'} {check.name}" + ("" if check.ok else f"\n       fix: {check.fix}"))
    if not all(check.ok for check in checks):
        raise Exit("the host is not ready for the local lab (see the fixes above)", code=1)


@task(help={**LAB_HELP, **PROVIDER_HELP, "keep": "on failure, leave what started running for debugging"})
def up(c, lab=None, keep=False, provider_="local"):
    """Boot the lab (preflight first); on failure, show the node's console and tear down."""
    running = provider(lab, provider_)
    try:
        running.up(keep=keep)
    except ProviderError as exc:
        raise Exit(str(exc), code=1) from None
    print(f"ssh: ssh -F {running.ssh_config()} server3   (or: invoke lab.ssh server3)")
    _print_status(running)


@task(help={**LAB_HELP, **PROVIDER_HELP, "name": "the lab's name, when its file is gone (default: the lab file's name)"})
def down(c, lab=None, name=None, provider_="local"):
    """Stop every guest and remove the lab's namespace (or destroy its VMs); idempotent."""
    lab_name = name or load(lab).name
    try:
        if provider_ == "local":
            teardown(LabPaths(lab_name))
        else:
            provider(lab, provider_).down()
    except ProviderError as exc:
        raise Exit(str(exc), code=1) from None
    print(f"lab {lab_name!r} is down")


@task(help={**LAB_HELP, **PROVIDER_HELP})
def status(c, lab=None, provider_="local"):
    """A table of the lab's nodes: role, address, up/down, VRRP state and VIPs held."""
    _print_status(provider(lab, provider_))


def _print_status(local: Provider) -> None:
    print(f"{'node':<10} {'role':<11} {'address':<15} {'state':<5} {'vrrp':<8} vips")
    for row in local.status():
        print(f"{row.name:<10} {row.role:<11} {row.address:<15} {'up' if row.up else 'down':<5} {row.vrrp:<8} "
              f"{' '.join(row.vips) or '-'}")


@task(help={**LAB_HELP, "node": "node name", "lines": "how many lines of each log"})
def logs(c, node, lab=None, lines=40):
    """Show a node's logs: console, boot, keepalived and nginx."""
    directory = LabPaths(load(lab).name).node(node)
    if not directory.exists():
        raise Exit(f"no logs for node {node!r}: is it part of the lab, and was the lab ever up?", code=1)
    for log in [directory / "console.log", directory / "boot.log", *sorted((directory / "log").rglob("*.log"))]:
        if log.exists():
            print(f"==> {log} <==")
            print("\n".join(log.read_text(errors="replace").splitlines()[-lines:]))


@task(help={**LAB_HELP, "node": "node name"})
def ssh(c, node, lab=None):
    """ssh into a node; anything after `--` runs as a command: invoke lab.ssh server3 -- ipvsadm -Ln"""
    config = LabPaths(load(lab).name).ssh_config
    if not config.exists():
        raise Exit("the lab has no ssh_config yet: run `invoke lab.up` first", code=1)
    os.execvp("ssh", ["ssh", "-F", str(config), node] + ([c.remainder] if c.remainder else []))
