"""`invoke fault.*`: what can be done to a running lab, for tests and for people."""

from __future__ import annotations

from invoke import Exit, task

from halab.providers.base import ProviderError
from halab.tasks.lab import LAB_HELP, PROVIDER_HELP, provider

NODE_HELP = {**LAB_HELP, **PROVIDER_HELP, "node": "node name, e.g. server3"}
SERVICE_HELP = {**NODE_HELP, "service": "keepalived or nginx"}


def _do(lab, provider_: str, verb: str, *args) -> None:
    try:
        getattr(provider(lab, provider_), verb)(*args)
    except ProviderError as exc:
        raise Exit(str(exc), code=1) from None
    print(f"{verb.replace('_', ' ')} {' '.join(args)}: done")


@task(help=SERVICE_HELP)
def stop(c, node, service, lab=None, provider_="local"):
    """Stop a service on a node (keepalived sends its priority-0 advert as it goes)."""
    _do(lab, provider_, "stop_service", node, service)


@task(help=SERVICE_HELP)
def start(c, node, service, lab=None, provider_="local"):
    """Start a service on a node again."""
    _do(lab, provider_, "start_service", node, service)


@task(help=NODE_HELP)
def crash(c, node, lab=None, provider_="local"):
    """Kill a node's kernel outright: no shutdown, no last advert."""
    _do(lab, provider_, "crash", node)


@task(help=NODE_HELP)
def restart(c, node, lab=None, provider_="local"):
    """Boot a node again (after a crash, or crash it first)."""
    _do(lab, provider_, "restart", node)


@task(help=NODE_HELP)
def cut(c, node, lab=None, provider_="local"):
    """Cut a node's link to the lab switch (its tap goes down)."""
    _do(lab, provider_, "cut_link", node)


@task(help=NODE_HELP)
def restore(c, node, lab=None, provider_="local"):
    """Restore a node's link to the lab switch."""
    _do(lab, provider_, "restore_link", node)
