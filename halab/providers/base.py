"""The contract every provider keeps, so tasks and tests never look inside one."""

from __future__ import annotations

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
