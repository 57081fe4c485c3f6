"""keepalived's own view of a configuration, read from its `--dump-conf` log.

The dump is keepalived's, after includes, `@id` conditionals, `$VARIABLES` and defaults,
so what it says is what the director will run; only its VRRP part is read (the checker
process, which would dump the virtual servers, needs the ip_vs module). Sections start
`------< Name >------`; an instance starts ` VRRP Instance = NAME` and its settings are
indented `key = value` lines, lists (`Virtual IP (2):`, `Unicast Peer :`) deeper ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TOPOLOGY = "VRRP Topology"


@dataclass
class Instance:
    """One vrrp_instance as keepalived resolved it."""

    name: str
    settings: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)

    def get(self, key: str, default: str = "") -> str:
        return self.settings.get(key, default)

    @property
    def state(self) -> str:
        return self.get("Wantstate")

    @property
    def priority(self) -> int | None:
        value = self.get("Priority")
        return int(value) if value.isdigit() else None

    @property
    def router_id(self) -> int | None:
        value = self.get("Virtual Router ID")
        return int(value) if value.isdigit() else None

    @property
    def version(self) -> int:
        return 3 if self.get("VRRP Version") == "3" else 2

    @property
    def interface(self) -> str:
        return self.get("Interface")

    @property
    def preempt(self) -> bool:
        return self.get("Preempt", "enabled") != "disabled"

    @property
    def advert_seconds(self) -> float | None:
        """`1 sec`, `500 milli-sec`: the dump's two ways of writing the interval."""
        number, _, unit = self.get("Advert interval").partition(" ")
        try:
            value = float(number)
        except ValueError:
            return None
        return value / 1000 if unit.startswith("milli") else value

    @property
    def source_address(self) -> str:
        """unicast_src_ip when the file sets one ("10.0.0.11 (from configuration)")."""
        value = self.get("Using src_ip")
        return value.split()[0] if "from configuration" in value else ""

    @property
    def vips(self) -> list[str]:
        """Each virtual IP's address, with its prefix when it has one ("10.0.0.100/24 dev ...")."""
        return [line.split()[0] for line in self.lists.get("Virtual IP", []) if line.split()]

    @property
    def unicast_peers(self) -> list[str]:
        return [line.split()[0] for line in self.lists.get("Unicast Peer", []) if line.split()]

    @property
    def sync_group(self) -> str:
        return self.get("Sync group")

    @property
    def auth(self) -> tuple[str, str]:
        return self.get("Authentication type"), self.get("Password")


@dataclass
class Dump:
    """The parts of a dump the import reads: global settings and the VRRP instances."""

    globals_: dict[str, str]
    instances: list[Instance]
    messages: list[str]


def parse(text: str) -> Dump:
    """A dump's text (keepalived's log lines, timestamps removed) as global settings and instances."""
    section = ""
    globals_: dict[str, str] = {}
    instances: list[Instance] = []
    messages: list[str] = []
    current: Instance | None = None
    listing = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("------<") and stripped.endswith(">------"):
            section, current, listing = stripped[7:-7].strip(), None, ""
            continue
        if not section:
            if stripped:
                messages.append(stripped)
            continue
        indent = len(line) - len(line.lstrip(" "))
        key, equals, value = stripped.partition(" = ")
        if section == "Global definitions" and indent == 1 and equals:
            globals_.setdefault(key, value)
        elif section == TOPOLOGY and indent == 1 and key == "VRRP Instance":
            current, listing = Instance(value), ""
            instances.append(current)
        elif section == TOPOLOGY and current is not None and indent == 3:
            listing = _list_name(stripped)
            if listing:
                current.lists.setdefault(listing, [])
            elif equals:
                current.settings.setdefault(key, value)
        elif section == TOPOLOGY and current is not None and indent >= 5 and listing:
            current.lists[listing].append(stripped)
        elif indent == 0 and stripped:
            messages.append(stripped)
    return Dump(globals_, instances, messages)


def _list_name(line: str) -> str:
    """`Virtual IP (2):` -> `Virtual IP`, `Unicast Peer :` -> `Unicast Peer`; other lines: ``."""
    if not line.endswith(":"):
        return ""
    name = line[:-1].strip()
    if name.endswith(")") and "(" in name:
        name = name[: name.rindex("(")].strip()
    return name
