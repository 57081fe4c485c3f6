"""`invoke lab.*`: describe, render and (later) run a lab."""

from __future__ import annotations

from invoke import Exit, task

from halab import configtest, render, spec
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


@task(name="render", help={**LAB_HELP, "check": "also run keepalived -t / nginx -t on the rendered files"})
def render_(c, lab=None, check=False):
    """Render every node's files into the lab's state directory."""
    model = load(lab)
    target = LabPaths(model.name).rendered
    written = render.write(render.render(model), target)
    print(f"rendered {len(written)} files for lab {model.name!r} into {target}")
    if check:
        verdicts = [configtest.keepalived(p, interface=model.vrrp.interface) for p in written
                    if p.name == "keepalived.conf"]
        verdicts += [configtest.nginx(p) for p in written if p.name == "nginx.conf"]
        for verdict in verdicts:
            print(f"  {'ok  ' if verdict.ok else 'FAIL'} {verdict.path}" + (f"\n{verdict.output}" if verdict.output else ""))
        if not all(v.ok for v in verdicts):
            raise Exit("a rendered file failed its daemon's config test", code=1)
