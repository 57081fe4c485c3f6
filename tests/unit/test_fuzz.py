"""Fuzzing the lab file: mutated shipped labs are refused cleanly or render well-formed files.

Each case starts from one of labs/*.yaml as data, changes one or two values (wrong types,
strings with control and structure characters, numbers at and past keepalived's limits),
deletes, renames or adds keys, dumps it back to YAML, and may then duplicate, drop or
cut a line or insert a stray character. The property: `spec.parse` raises SpecError, or
the lab renders and every file is well-formed (no line, block, comment or shell word that
the templates did not write). Any other exception fails the test. A second test puts any
text into each string field in turn; a third feeds arbitrary bytes.

The runs are derandomized (hypothesis's seed is derived from the test), so CI sees the
same cases every time; a failure names the seed or value that reproduces it.
"""

from __future__ import annotations

import functools
import json
import random
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from halab import render, spec
from halab.errors import SpecError

LABS = sorted((Path(__file__).resolve().parents[2] / "labs").glob("*.yaml"))
TEMPLATES = Path(render.__file__).parent / "templates"
CASES = 400
TEXT_CASES = 500

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


def _slots(data: Any, path: tuple = ()) -> list[tuple]:
    """Every place a value sits in the data: (path of keys and indexes)."""
    found = [path] if path else []
    if isinstance(data, dict):
        found += [slot for key, value in data.items() for slot in _slots(value, (*path, key))]
    elif isinstance(data, list):
        found += [slot for i, value in enumerate(data) for slot in _slots(value, (*path, i))]
    return found


@functools.cache
def _expanded_text(path: Path) -> str:
    """Computed once per lab: validating and dumping it for every case would dominate the run."""
    return yaml.safe_dump(spec.load(path).model_dump(mode="json", by_alias=True), sort_keys=False)


def _expanded(path: Path) -> Any:
    """The lab with every field written out, defaults included, so every field can be mutated."""
    return yaml.safe_load(_expanded_text(path))


def _at(data: Any, path: tuple) -> Any:
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
        return isinstance(_at(data, path), (int, float, str))
    if kind in ("rename", "add"):
        return isinstance(_at(data, path[:-1]), dict)
    return True


def _mutate(data: Any, path: tuple, kind: str, value: Any) -> None:
    """Change the data in place at `path`: replace, delete, rename (dict key) or add a sibling key."""
    parent, last = _at(data, path[:-1]), path[-1]
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
    data = _expanded(path) if rng.random() < 0.5 else yaml.safe_load(path.read_text())
    for _ in range(rng.choice([1, 1, 2])):
        kind = rng.choice(["replace", "similar", "similar", "similar", "delete", "rename", "add"])
        slots = [slot for slot in _slots(data) if _fits(kind, data, slot)]
        if slots:
            slot = rng.choice(slots)
            _mutate(data, slot, kind, _similar(_at(data, slot), rng) if kind == "similar" else _any_value(rng))
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


# --- well-formedness of what rendering wrote ---------------------------------------------------

_WORD = re.compile(r"[A-Za-z0-9/][A-Za-z0-9._~%?=&+,:@/-]*")


def _template_keywords(template: str) -> set[str]:
    """The words that start a line in a template's own text: the only keywords a file may have."""
    words = set()
    for line in (TEMPLATES / template).read_text().splitlines():
        first = line.split()[:1]
        if first and not first[0].startswith(("{{", "{%", "!", "#")):
            words.add(first[0])
    return words


# A health check's type is a keyword the template takes from the lab (`{{ check.type }} {`).
KEEPALIVED_KEYWORDS = _template_keywords("keepalived.conf.j2") | set(
    get_args(spec.HealthCheck.model_fields["type"].annotation)
)
NGINX_KEYWORDS = _template_keywords("nginx.conf.j2")
# Blocks of keepalived.conf whose lines are values (addresses, e-mails), not keywords.
VALUE_BLOCKS = {"notification_email", "virtual_ipaddress", "unicast_peer"}
INLINE_COMMENT = "! seconds between health checks"


def keepalived_well_formed(text: str) -> None:
    """Lines keepalived reads whole (< 1024 bytes), no quote, escape or stray comment, template
    keywords only, each value one word, every block closed."""
    blocks: list[str] = []
    for raw in text.splitlines():
        assert len(raw.encode()) < 1024 and not raw.endswith("\\"), raw  # a trailing \ continues a line
        if raw.lstrip().startswith("!"):
            continue
        body, _, comment = raw.partition("!")
        assert not re.search(r'["\'\\$#]', raw) and (not comment or "!" + comment == INLINE_COMMENT), raw
        words = body.split()
        if not words:
            continue
        assert all(_WORD.fullmatch(word) or word in "{}" for word in words), raw
        if words == ["}"]:
            blocks.pop()
        elif blocks and blocks[-1] in VALUE_BLOCKS:
            # one value; a VIP may name its device (NAT's gateway: `address dev eth1`)
            assert len(words) == 1 or (len(words) == 3 and words[1] == "dev"), raw
        else:
            assert words[0] in KEEPALIVED_KEYWORDS and "{" not in words[:-1] and "}" not in words, raw
            if words[-1] == "{":
                blocks.append(words[0])
    assert not blocks


def nginx_well_formed(text: str) -> None:
    """Template keywords only, one-word values, each statement ended by `;`, every block closed."""
    depth = 0
    for raw in text.splitlines():
        words = raw.partition("#")[0].split()
        if not words:
            continue
        if words == ["}"]:
            depth -= 1
            continue
        assert words[0] in NGINX_KEYWORDS and (words[-1] == "{" or words[-1].endswith(";")), raw
        assert all(_WORD.fullmatch(word.rstrip(";")) or word == "{" for word in words[1:]), raw
        depth += words[-1] == "{"
    assert depth == 0


def script_well_formed(text: str) -> None:
    """sh parses it, and its only lab values are addresses inside double quotes."""
    assert subprocess.run(["sh", "-n"], input=text, text=True, capture_output=True).returncode == 0
    for line in text.splitlines():
        if line.startswith(("VIPS=", "SELF=")):
            assert re.fullmatch(r'[A-Z]+="[0-9.]+( [0-9.]+)*"', line), line


def files_well_formed(files: dict[str, str]) -> None:
    """Each rendered file by its kind."""
    for path, text in files.items():
        if path.endswith("keepalived.conf"):
            keepalived_well_formed(text)
        elif path.endswith("nginx.conf"):
            nginx_well_formed(text)
        elif path.endswith(render.REALSERVER_SCRIPT):
            script_well_formed(text)
        elif path.endswith("index.html"):
            assert re.fullmatch(r"<h1>[a-z0-9-]+'s page</h1>\n", text)
        elif path.endswith(".json"):
            json.loads(text)


def outcome(text: str) -> str:
    """'refused' (a SpecError) or 'valid' (rendered and well-formed); anything else propagates."""
    try:
        lab = spec.parse(text)
    except SpecError as exc:
        assert len(str(exc)) < 20000
        return "refused"
    files_well_formed(render.render(lab))
    return "valid"


@pytest.fixture
def no_version_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's HALAB_*_VERSION would change which mutated labs are valid."""
    for name in ("HALAB_KEEPALIVED_VERSION", "HALAB_NGINX_VERSION"):
        monkeypatch.delenv(name, raising=False)


FUZZ = settings(
    max_examples=CASES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)  # the fixture only clears variables


def test_shipped_labs_are_well_formed():
    """The oracle itself: every shipped lab passes it."""
    for path in LABS:
        assert outcome(path.read_text()) == "valid", path.name


def test_the_oracle_catches_an_injection():
    conf = render.render(spec.load())["server3/etc/keepalived/keepalived.conf"]
    for injected in ("router_id LVS\n   script_user root", "router_id LVS #x", 'router_id "LVS"', "router_id {"):
        with pytest.raises(AssertionError):
            keepalived_well_formed(conf.replace("router_id LVS_DEVEL", injected))


def test_mutated_labs_are_refused_cleanly_or_render_well_formed(no_version_overrides):
    outcomes: Counter[str] = Counter()

    @FUZZ
    @given(SEEDS)
    def case(seed: int) -> None:
        outcomes[outcome(mutated_lab_text(seed))] += 1

    case()
    assert sum(outcomes.values()) == CASES
    # Both outcomes, plenty of each: a fuzzer whose labs are all refused would test only the validator.
    assert outcomes["valid"] >= CASES // 16 and outcomes["refused"] >= CASES // 2, outcomes


def _text_slots() -> list[tuple[Path, tuple]]:
    """Where the expanded labs hold a string: the free-text fields, names, addresses and choices."""
    return [
        (path, slot) for path in LABS for slot in _slots(_expanded(path)) if isinstance(_at(_expanded(path), slot), str)
    ]


ANY_TEXT = st.one_of(
    st.text(alphabet=STRUCTURE + "ABZxyz@", max_size=20), st.text(max_size=300), st.sampled_from(LAB_WORDS)
)


@settings(FUZZ, max_examples=TEXT_CASES)
@given(st.sampled_from(_text_slots()), ANY_TEXT)
def test_any_string_in_any_text_field_is_refused_or_renders_well_formed(no_version_overrides, where, value):
    """Every string field in turn, with any text: each gets several tries, which the
    mutations above, spread over every field and type, do not give each one."""
    path, slot = where
    data = _expanded(path)
    _mutate(data, slot, "replace", value)
    outcome(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_refused_cleanly(data: bytes):
    with pytest.raises(SpecError):
        spec.parse(data)
