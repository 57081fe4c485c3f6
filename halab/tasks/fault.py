"""`invoke fault.*`: what can be done to a running lab, for tests and for people."""

from __future__ import annotations

from halab.tasks import LAB_HELP, PROVIDER_HELP, provider_for, task

NODE_HELP = {**LAB_HELP, **PROVIDER_HELP, "node": "node name, e.g. server3"}
SERVICE_HELP = {**NODE_HELP, "service": "keepalived, nginx or smtpd"}


@task(help=SERVICE_HELP)
def stop(c, node, service, lab=None, provider="local"):
    """Stop a service on a node (keepalived sends its priority-0 advert as it goes)."""
    provider_for(lab, provider).stop_service(node, service)
    print(f"stopped {service} on {node}")


@task(help=SERVICE_HELP)
def start(c, node, service, lab=None, provider="local"):
    """Start a service on a node again."""
    provider_for(lab, provider).start_service(node, service)
    print(f"started {service} on {node}")


@task(help=NODE_HELP)
def crash(c, node, lab=None, provider="local"):
    """Kill a node outright (its kernel, or a forced power-off): no shutdown, no last advert."""
    provider_for(lab, provider).crash(node)
    print(f"crashed {node}")


@task(help=NODE_HELP)
def restart(c, node, lab=None, provider="local"):
    """Boot a node again (after a crash, or crash it first)."""
    provider_for(lab, provider).restart(node)
    print(f"restarted {node}")


@task(help=NODE_HELP)
def cut(c, node, lab=None, provider="local"):
    """Cut a node's link to the lab switch."""
    provider_for(lab, provider).cut_link(node)
    print(f"cut {node}'s link")


@task(help=NODE_HELP)
def restore(c, node, lab=None, provider="local"):
    """Restore a node's link to the lab switch."""
    provider_for(lab, provider).restore_link(node)
    print(f"restored {node}'s link")
