"""Fuzzing the lab file: mutated shipped labs are refused cleanly or render well-formed files.

Each case is a shipped lab mutated as data and then as text (tests/mutations.py, shared
with the config tier's fuzz test). The property: `spec.parse` raises SpecError, or
the lab renders and every file is well-formed (no line, block, comment or shell word that
the templates did not write). Any other exception fails the test. A second test puts any
text into each string field in turn; a third feeds arbitrary bytes.

The runs are derandomized (hypothesis's seed is derived from the test), so CI sees the
same cases every time; a failure names the seed or value that reproduces it.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import get_args

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from halab import render, spec
from halab.errors import SpecError
from halab.providers import grayfaults
from tests.mutations import (
    CASES,
    LAB_WORDS,
    LABS,
    SEEDS,
    STRUCTURE,
    expanded,
    mutate,
    mutated_lab_text,
    slots_of,
    value_at,
)

TEMPLATES = Path(render.__file__).parent / "templates"
TEXT_CASES = 500

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


NOTIFY_LINE = f'    notify "/bin/sh /{render.NOTIFY_SCRIPT}"'


def keepalived_well_formed(text: str) -> None:
    """Lines keepalived reads whole (< 1024 bytes), no quote, escape or stray comment, template
    keywords only, each value one word, every block closed."""
    blocks: list[str] = []
    for raw in text.splitlines():
        assert len(raw.encode()) < 1024 and not raw.endswith("\\"), raw  # a trailing \ continues a line
        if raw.lstrip().startswith("!") or raw == NOTIFY_LINE:  # the one quoted line: a template literal
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


FAULT_DROPINS = f"{grayfaults.NGINX_DROPINS}/*.conf;"


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
        # The one glob: the drop-ins a gray fault puts on a real server (a template literal).
        assert all(_WORD.fullmatch(word.rstrip(";")) or word in ("{", FAULT_DROPINS) for word in words[1:]), raw
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
    for injected in ("router_id LVS\n   notify_fifo /tmp/x", "router_id LVS #x", 'router_id "LVS"', "router_id {"):
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
        (path, slot)
        for path in LABS
        for slot in slots_of(expanded(path))
        if isinstance(value_at(expanded(path), slot), str)
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
    data = expanded(path)
    mutate(data, slot, "replace", value)
    outcome(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_refused_cleanly(data: bytes):
    with pytest.raises(SpecError):
        spec.parse(data)
