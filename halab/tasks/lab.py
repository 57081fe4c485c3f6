"""`invoke lab.*`: describe, render and (later) run a lab."""

from __future__ import annotations

from invoke import Exit, task

from halab import build, configtest, render, sources, spec
from halab.paths import LabPaths
from halab.problems import SpecError

LAB_HELP = {"lab": "lab file (YAML); default: labs/seed.yaml, the write-up's lab"}


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
