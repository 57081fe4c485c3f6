"""The contract every provider keeps, so tasks and tests never look inside one."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from halab.spec import Lab


@dataclass(frozen=True)
class Check:
    """One preflight item: what was checked, whether it passed, and how to fix it if not."""

    name: str
    ok: bool
    fix: str = ""


@dataclass(frozen=True)
class NodeStatus:
    name: str
    role: str
    address: str
    up: bool
    vrrp: str
    vips: tuple[str, ...]


class ProviderError(Exception):
    """A lab operation that failed; the message says what and where to look."""


class Provider(Protocol):
    lab: "Lab"  # the lab as this provider runs it (e.g. its NIC name), what tests should read

    def running(self) -> bool: ...
    def preflight(self) -> list[Check]: ...
    def up(self, keep: bool = False) -> None: ...
    def down(self) -> None: ...
    def status(self) -> list[NodeStatus]: ...
    def ssh_config(self) -> Path: ...
    def stop_service(self, node: str, service: str) -> None: ...
    def start_service(self, node: str, service: str) -> None: ...
    def crash(self, node: str) -> None: ...
    def restart(self, node: str) -> None: ...
    def cut_link(self, node: str) -> None: ...
    def restore_link(self, node: str) -> None: ...


def wait_converged(status: Callable[[], list[NodeStatus]], vips: list[str], timeout: float, hint: str = "") -> None:
    """Until each VIP sits on exactly one director (VRRP's first election), or ProviderError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = [vip for row in status() if row.role == "director" for vip in row.vips]
        if sorted(held) == sorted(vips):
            return
        time.sleep(0.2)
    raise ProviderError(f"VRRP did not place every VIP on exactly one director within {timeout:.0f} s{hint}")
