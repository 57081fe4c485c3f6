"""Mutated shipped labs, for the fuzz tests: the unit tier's (refused cleanly or well-formed)
and the config tier's (valid ones pass the daemons' own config tests) draw the same cases.

Each case starts from a shipped lab as data, changes one or two values (wrong types,
strings with control and structure characters, numbers at and past keepalived's limits),
deletes, renames or adds keys, dumps it back to YAML, and may then duplicate, drop or cut
a line or insert a stray character. Every choice comes from one seed, so a case is one number.
"""

from __future__ import annotations

import functools
import random
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from halab import paths, spec

# The shipped labs in name order: the order the derandomized cases were drawn from.
LABS = sorted(paths.shipped_labs())
# How many cases a fuzz run draws.
CASES = 400

# Numbers at and just past every limit the lab file has (keepalived's, VRRP's, IPVS's, the
# lab's own), and the ones YAML and floats make awkward.
LIMIT_NUMBERS = [
    0,
    1,
    2,
    7,
    8,
    9,
    15,
    16,
    17,
    40.95,
    40.96,
    41,
    50,
    51,
    64,
    65,
    100,
    254,
    255,
    256,
    599,
    600,
    4294,
    4295,
    65535,
    65536,
    86400,
    86401,
    2678400,
    2678401,
    2**31,
    2**32,
    2**63,
    10**39,
    10**40,
    -1,
    0.01,
    0.001,
    0.29,
    0.5,
    1.5,
    1e300,
    float("inf"),
    float("-inf"),
    float("nan"),
]
# Words the lab file uses, so that mutations also produce labs that are still valid.
LAB_WORDS = [
    "MASTER",
    "BACKUP",
    "director",
    "realserver",
    "client",
    "server1",
    "server2",
    "server3",
    "server4",
    "localhost",
    "172.25.1.1",
    "172.25.1.100",
    "172.25.1.200",
    "172.25.1.250",
    "172.25.1.0/24",
    "10.9.0.0/16",
    "224.0.0.18",
    "999.1.1.1",
    "2.2.7",
    "2.2.8",
    "2.0.6",
    "1.22.1",
    "1.17.9",
    "HTTP_GET",
    "TCP_CHECK",
    "UDP",
    "TCP",
    "wrr",
    "lc",
    "NAT",
    "PASS",
    "AH",
    "active-active",
    "active-backup",
    "sysctl",
    "arptables",
    "root@localhost",
    "a.b+c@example.org",
    "eth1",
    "lo",
    "/health?x=1",
    "LVS_DEVEL",
    "halab/rocky-9",
    "x" * 300,
    "",
]
# Characters that would change a file's structure, and some that only make it odd.
STRUCTURE = "abc019-._/ \n\t\r\"'{}#!$;\\@~`|&<>%*"
# Stray characters inserted into the YAML text: control characters, YAML indicators, BOMs.
STRAY = [
    "\0",
    "\x01",
    "\x1b",
    "\x7f",
    "\x85",
    "\ufeff",
    "\ud7ff",
    "\t",
    "\r",
    "\n",
    ":",
    "- ",
    "&a ",
    "*a",
    "!!set ",
    "? ",
    "[",
    "{",
    "}",
    "#",
    "'",
    '"',
    "é",
    "\U0001f600",
]


def _any_character(rng: random.Random) -> str:
    """ASCII (controls included) as often as the rest of Unicode; no surrogates (YAML cannot hold them)."""
    return chr(rng.choice([rng.randint(0, 0x7F), rng.randint(0x80, 0xD7FF), rng.randint(0xE000, 0x10FFFF)]))


def _any_value(rng: random.Random) -> Any:
    """A value of any type YAML can hold: numbers at limits, booleans, null, lab words, strings
    of structure characters or of any Unicode, lists and mappings."""
    return rng.choice(
        [
            lambda: rng.choice(LIMIT_NUMBERS),
            lambda: rng.randint(-10, 70000),
            lambda: rng.choice([True, False, None]),
            lambda: rng.choice(LAB_WORDS),
            lambda: "".join(rng.choices(STRUCTURE, k=rng.randint(0, 12))),
            lambda: "".join(_any_character(rng) for _ in range(rng.randint(0, 16))),
            lambda: rng.sample(["server3", "server4", "server1", "root@localhost", 1, None], rng.randint(0, 4)),
            lambda: {
                rng.choice(["weight", "address", "role", "server1", "x"]): rng.choice([0, 1, 3, "x", None])
                for _ in range(rng.randint(0, 2))
            },
        ]
    )()


def slots_of(data: Any, path: tuple = ()) -> list[tuple]:
    """Every place a value sits in the data: (path of keys and indexes)."""
    found = [path] if path else []
    if isinstance(data, dict):
        found += [slot for key, value in data.items() for slot in slots_of(value, (*path, key))]
    elif isinstance(data, list):
        found += [slot for i, value in enumerate(data) for slot in slots_of(value, (*path, i))]
    return found


@functools.cache
def _expanded_text(path: Path) -> str:
    """Computed once per lab: validating and dumping it for every case would dominate the run."""
    return yaml.safe_dump(spec.load(path).model_dump(mode="json", by_alias=True), sort_keys=False)


def expanded(path: Path) -> Any:
    """The lab with every field written out, defaults included, so every field can be mutated."""
    return yaml.safe_load(_expanded_text(path))


def value_at(data: Any, path: tuple) -> Any:
    """The value at `path`."""
    for step in path:
        data = data[step]
    return data


def _similar(current: int | float | str, rng: random.Random) -> Any:
    """A value of the same type as the current one, often still valid: so that mutated labs
    are not all refused and rendering gets exercised with values at the limits too."""
    if isinstance(current, bool):
        return not current
    if isinstance(current, int):
        return rng.choice(
            [
                rng.choice([n for n in LIMIT_NUMBERS if type(n) is int]),
                rng.randint(0, 300),
                current + rng.randint(-2, 2),
                current + rng.randint(1, 9),
            ]
        )
    if isinstance(current, float):
        return rng.choice([0.01, 0.29, 0.5, 1.0, 40.95, 40.96, 255.0, round(rng.uniform(0.01, 50), rng.randint(0, 3))])
    return rng.choice(
        [
            f"{current}{rng.randint(0, 9)}",
            f"{current}{rng.randint(0, 9)}",
            current.upper(),
            rng.choice(LAB_WORDS),
            current + "".join(rng.choices(STRUCTURE, k=rng.randint(1, 3))),
        ]
    )


def _fits(kind: str, data: Any, path: tuple) -> bool:
    """Whether a mutation changes anything at `path`: a similar value needs a number or string,
    renaming and adding need a mapping."""
    if kind == "similar":
        return isinstance(value_at(data, path), (int, float, str))
    if kind in ("rename", "add"):
        return isinstance(value_at(data, path[:-1]), dict)
    return True


def mutate(data: Any, path: tuple, kind: str, value: Any) -> None:
    """Change the data in place at `path`: replace, delete, rename (dict key) or add a sibling key."""
    parent, last = value_at(data, path[:-1]), path[-1]
    if kind in ("replace", "similar"):
        parent[last] = value
    elif kind == "delete":
        del parent[last]
    elif kind == "rename":
        parent[value if isinstance(value, (str, int, bool, type(None))) else str(value)] = parent.pop(last)
    else:
        parent[f"extra_{value!s:.10}"] = value


def mutated_lab_text(seed: int) -> str:
    """A shipped lab, as written or with every default spelled out, mutated as data and then as text.

    Every choice comes from a Random seeded by `seed`, so each case is one number (hypothesis
    draws them, derandomized): hypothesis's own choices inside one case favour the first slot
    and the simplest value, and then most cases are the same few labs.
    """
    rng = random.Random(seed)
    path = rng.choice(LABS)
    data = expanded(path) if rng.random() < 0.5 else yaml.safe_load(path.read_text())
    for _ in range(rng.choice([1, 1, 2])):
        kind = rng.choice(["replace", "similar", "similar", "similar", "delete", "rename", "add"])
        slots = [slot for slot in slots_of(data) if _fits(kind, data, slot)]
        if slots:
            slot = rng.choice(slots)
            mutate(data, slot, kind, _similar(value_at(data, slot), rng) if kind == "similar" else _any_value(rng))
    lines = yaml.safe_dump(data, sort_keys=False, allow_unicode=True).splitlines(keepends=True)
    edit = rng.choice(["none", "none", "none", "none", "duplicate-line", "drop-line", "cut", "stray"])
    at = rng.randrange(len(lines))
    if edit == "duplicate-line":
        lines.insert(at, lines[at])
    elif edit == "drop-line":
        del lines[at]
    text = "".join(lines)
    position = rng.randint(0, len(text))
    if edit == "cut":
        return text[:position]
    if edit == "stray":
        return text[:position] + rng.choice(STRAY) + text[position:]
    return text


SEEDS = st.integers(min_value=0, max_value=2**64)
