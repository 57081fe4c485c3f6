"""MkDocs hooks: the reference parts of the documentation, generated from the code at build time.

A page asks for a generated part with a line of its own, `<!-- generated: NAME -->`, which
the build replaces with GENERATORS[NAME](): the lab file's fields from the pydantic model
(halab/spec.py) and its cross-field rules (halab/rules.py), the tasks and their options
from the invoke collection (tasks.py), the fault catalogue (halab/prove/scenarios.py) and
its bounds (halab/prove/bounds.py), and the lab file the walkthrough models. Written by
hand, those tables would drift from the code the day someone adds a field, an option or a
scenario; generated, they cannot. An unknown
marker, a model field without a description in lab-fields.yaml, or a description of a field
the model no longer has fails the build (`mkdocs build --strict`, tests/unit/test_docs.py).
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import signal
import sys
import types
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from mkdocs.exceptions import PluginError
from pydantic import AfterValidator, BaseModel, BeforeValidator, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

DOCS = Path(__file__).resolve().parent
# The checkout these docs belong to comes first, so its code is the code described.
sys.path.insert(0, str(DOCS.parent))

from halab import paths, rules, spec  # noqa: E402
from halab.prove import bounds, established, scenarios, verdicts  # noqa: E402
from halab.prove.results import DEFAULT_MARGIN  # noqa: E402

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)
# What the lab file reference says of each field beyond its type: one line per field path.
DESCRIPTIONS = DOCS / "lab-fields.yaml"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace every generated-part marker of a page with that part, built from the code now."""

    def generated(found: re.Match[str]) -> str:
        name = found[1]
        if name not in GENERATORS:
            raise PluginError(f"{page.file.src_uri}: unknown generated part {name!r}; known: {', '.join(GENERATORS)}")
        return GENERATORS[name]()

    return MARKER.sub(generated, markdown)


# --- shared ---------------------------------------------------------------------------


def _cell(text: str) -> str:
    """Text made safe for one cell of a Markdown table: no line breaks, no column separators."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _paragraph(thing: Any) -> str:
    """The first paragraph of an object's docstring, on one line ("" without one)."""
    doc = inspect.getdoc(thing) if thing.__doc__ else ""
    return " ".join((doc or "").split("\n\n")[0].split())


# --- the lab file's fields --------------------------------------------------------------

_SIMPLE = {
    int: "integer",
    float: "number",
    bool: "true or false",
    str: "text",
    IPv4Address: "IPv4 address",
    IPv4Network: "IPv4 network",
    type(None): "null",
}


def _kind(annotation: Any) -> tuple[str, list[str]]:
    """A field's type in words and what it allows, read from its annotation and its validators."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        text, allowed = _kind(args[0])
        return text, allowed + _constraints(annotation, args[1:])
    if origin in (Union, types.UnionType):
        kinds = [_kind(arg) for arg in args]
        return " or ".join(text for text, _ in kinds), [word for _, words in kinds for word in words]
    if origin in (Literal, dict, tuple):
        return _composite(origin, args)
    return ("mapping", []) if _is_model(annotation) else (_SIMPLE[annotation], [])


def _composite(origin: Any, args: tuple[Any, ...]) -> tuple[str, list[str]]:
    """A Literal, a mapping or a list in words, with what it allows."""
    if origin is Literal:
        return _SIMPLE[type(args[0])], ["one of " + ", ".join(f"`{value}`" for value in args)]
    if origin is dict:
        key, (value, allowed) = _kind(args[0]), _kind(args[1])
        return f"mapping of {key[0]} to {value}", [f"keys: {word}" for word in key[1]] + allowed
    item, allowed = _kind(args[0])
    return f"list; each: {item}", allowed


def _constraints(annotation: Any, metadata: tuple[Any, ...]) -> list[str]:
    """Bounds from annotated_types (Field(ge=...)) and, for a field with a validator of its own,
    the sentence that validator answers a wrong value with: what its error message calls allowed."""
    words: list[str] = []
    for item in metadata:
        for bound in item.metadata if isinstance(item, FieldInfo) else [item]:
            words += _bound(bound)
    if any(isinstance(item, (AfterValidator, BeforeValidator)) for item in metadata):
        try:
            TypeAdapter(annotation).validate_python(" ")
        except ValidationError as exc:
            words.append(exc.errors()[0]["msg"].removeprefix("should be "))
    return words


def _bound(item: Any) -> list[str]:
    kinds = {
        annotated_types.Ge: ("at least", "ge"),
        annotated_types.Gt: ("more than", "gt"),
        annotated_types.Le: ("at most", "le"),
        annotated_types.Lt: ("less than", "lt"),
        annotated_types.MinLen: ("length at least", "min_length"),
        annotated_types.MaxLen: ("length at most", "max_length"),
    }
    for kind, (words, attribute) in kinds.items():
        if isinstance(item, kind):
            return [f"{words} {getattr(item, attribute)}"]
    return []


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "its fields' defaults"
    return f"`{yaml.safe_dump(_plain(value), default_flow_style=True, width=1000).strip().removesuffix('...').strip()}`"


def _plain(value: Any) -> Any:
    """A default as YAML writes it: lists for tuples, text for addresses."""
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value if isinstance(value, (int, float, str, type(None))) else str(value)


def _inner(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """The model a field holds, if any, and the path step to it: "." a mapping, ".<name>." one
    of a mapping of them, "[]." one of a list of them."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is dict and _is_model(args[1]):
        return args[1], ".<name>."
    if origin is tuple and _is_model(args[0]):
        return args[0], "[]."
    for arg in [annotation, *args]:
        if _is_model(arg):
            return arg, "."
    return None, ""


def _is_model(thing: Any) -> bool:
    return isinstance(thing, type) and issubclass(thing, BaseModel)


def _sections(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, type[BaseModel], list[tuple]]]:
    """(path prefix, model, its fields as (path, field)) for the model and every model inside it."""
    fields = [(prefix + (field.alias or name), field) for name, field in model.model_fields.items()]
    yield prefix, model, fields
    for path, field in fields:
        inner, step = _inner(field.annotation)
        if inner is not None:
            yield from _sections(inner, path + step)


def lab_file_fields() -> str:
    """Every field of the lab file: one table per mapping, from the model, described by lab-fields.yaml."""
    described: dict[str, str] = yaml.safe_load(DESCRIPTIONS.read_text())
    sections = list(_sections(spec.Lab))
    every = [path for _, _, fields in sections for path, _ in fields]
    undescribed = [path for path in every if path not in described]
    stale = [path for path in described if path not in every]
    if undescribed or stale:
        raise PluginError(
            f"{DESCRIPTIONS.name} is out of step with halab/spec.py: "
            f"no description for {undescribed or 'none'}; no such field for {stale or 'none'}"
        )
    parts = []
    for prefix, model, fields in sections:
        heading = f"`{prefix.rstrip('.')}`" if prefix else "The top level"
        rows = []
        for path, field in fields:
            kind, allowed = _kind(field.rebuild_annotation())
            rows.append((f"`{path.removeprefix(prefix)}`", kind, _default(field), "; ".join(allowed), described[path]))
        intro = _paragraph(model) if model.__doc__ else ""
        parts.append(
            f"## {heading}\n\n{intro}\n\n" + _table(("field", "type", "default", "allowed", "what it is"), rows)
        )
    return "\n".join(parts)


def lab_rules() -> str:
    """The rules across fields, in the order they run, each with its docstring."""
    return _table(
        ("rule", "what it requires, and why"), [(f"`{rule.__name__}`", _paragraph(rule)) for rule in rules.RULES]
    )


# --- the tasks --------------------------------------------------------------------------


def _collection() -> Any:
    """The invoke collection tasks.py assembles (the one `invoke --list` shows). tasks.py sets
    signal handlers for a task's process; the build's own are put back."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE)}
    try:
        loader = importlib.util.spec_from_file_location("halab_tasks_entry", paths.ROOT / "tasks.py")
        assert loader is not None and loader.loader is not None
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
        return module.ns
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def tasks() -> str:
    """Every task: a summary table, then each task's docstring and options as `--help` prints them."""
    collection = _collection()
    contexts = sorted(collection.to_contexts(), key=lambda context: (context.name != "demo", context.name))
    summary = [
        (
            f"[`{c.name}`](#{c.name.replace('.', '')})",
            ", ".join(f"`{a}`" for a in c.aliases),
            _first_line(collection, c.name),
        )
        for c in contexts
    ]
    parts = [_table(("task", "also called", "what it does"), summary)]
    for context in contexts:
        doc = inspect.getdoc(collection[context.name].body) or ""
        options = _table(("option", "what it does"), [(f"`{flags}`", text) for flags, text in context.help_tuples()])
        parts.append(f"### {context.name}\n\n{doc}\n\n" + (options if context.flags else "No options.\n"))
    return "\n".join(parts)


def _first_line(collection: Any, name: str) -> str:
    """A task's first docstring line: what `invoke --list` shows of it."""
    return (inspect.getdoc(collection[name].body) or "").splitlines()[0]


def short_flags() -> str:
    """The project's short flags: one letter, one option, in every task."""
    from halab.tasks import SHORT_FLAGS

    return _table(("flag", "option"), [(f"`-{letter}`", f"`--{option}`") for option, letter in SHORT_FLAGS.items()])


# --- the fault catalogue and its bounds -------------------------------------------------


# The words for scenarios.HOLDERS and an entry's target; a value added there without words here fails the build.
HOLDERS = {
    "normal": "where the lab file places them",
    "failed-over": "all on the BACKUP",
    "returned": "back on the MASTER (preempt) or still on the BACKUP (nopreempt)",
    "any": "wherever (not judged by place: the split figures judge it)",
}
TARGETS = {
    "master": "the first VIP's MASTER",
    "server": "the first service's first real server",
    "backup": "the first VIP's BACKUP",
}
# Where each network fault is made (halab/providers/netfaults.py); one missing here fails the build.
WHERE = {
    "vrrp-blocked": "in the node: its firewall (nft when it has it, else iptables) drops IP protocol 112",
    "director-partition": "in both directors: each one's firewall drops the other's address",
    "advert-loss": "in the node: netem loss on its lab interface, VRRP only (a prio qdisc, a u32 filter)",
    "link-flap": "the provider's own link cut and restore, repeated",
    "multicast-dropped": "on the lab switch (ebtables on the local lab's bridge): IPv4 to 224.0.0.18",
    "one-way": "on the lab switch: VRRP from the MASTER's MAC out of the BACKUP's port",
    "garp-lost": "on the lab switch: the VIPs' gratuitous ARPs out of the client's port, during a takeover",
}
SPLIT_WORDS = {
    "splits": "two MASTERs within the master-down timer",
    "holds": "never two MASTERs",
    "rejoins": "one MASTER within one advert",
    "multicast": "two MASTERs where adverts are multicast, none where they are unicast",
}


def _expects(expect: scenarios.Expect | None) -> str:
    if expect is None:
        return "no repair phase"
    words = [f"bound `{expect.bound}`", f"the VIPs end {HOLDERS[expect.holders]}"]
    words += [f"end state within `{expect.settle}`"] if expect.settle else []
    words += [f"server {'back in' if expect.member else 'out of'} IPVS"] if expect.member is not None else []
    words += ["held connections judged"] if expect.connections else []
    words += [f"persistence judged ({expect.sticky})"] if expect.sticky else []
    words += ["the frozen director may still hold the VIP"] if expect.stale else []
    words += [f"server out of IPVS if the check sees `{expect.gray}`, else kept (failing)"] if expect.gray else []
    words += [f"IPVS table as the {'file' if expect.table == 'file' else 'changed file'} says"] if expect.table else []
    words += ["no VRRP transition, no failed request"] if expect.bound in verdicts.QUIET else []
    words += [SPLIT_WORDS[expect.split]] if expect.split else []
    words += ["split figures measured"] if "split" in expect.observe and not expect.split else []
    return "; ".join(words)


def fault_catalogue(entries: tuple[scenarios.Entry, ...] = scenarios.CATALOGUE) -> str:
    """The catalogue as data: each scenario's fault, target and what each phase expects."""
    rows = [
        (
            f"`{entry.name}`",
            entry.description.format(node="(target)"),
            f"`{entry.primitive}`" + (f" ({entry.service})" if entry.service else ""),
            TARGETS[entry.target],
            _expects(entry.on_fault),
            _expects(entry.on_heal),
        )
        for entry in entries
    ]
    return _table(("scenario", "what happens", "fault", "target", "the fault's phase", "the repair's phase"), rows)


def gray_catalogue() -> str:
    """The gray failures, run on request, as data."""
    return fault_catalogue(scenarios.GRAY)


def gray_bounds() -> str:
    """Each gray phase's bound on the seed lab and on it with an HTTP_GET check."""
    seed = spec.load(paths.DEFAULT_LAB)
    check = seed.virtual_services[0].health_check.model_copy(update={"type": "HTTP_GET"})
    service = seed.virtual_services[0].model_copy(update={"health_check": check})
    http = seed.model_copy(update={"virtual_services": (service,)})
    rows = []
    for plain, checked in zip(scenarios.gray(seed), scenarios.gray(http), strict=True):
        for phase, other in zip(plain.phases, checked.phases, strict=True):
            rows.append((f"`{plain.name}`", phase.name, _kept(phase), _kept(other)))
    return _table(("scenario", "phase", "seed (TCP_CHECK)", "seed with HTTP_GET"), rows)


def _kept(phase: scenarios.Phase) -> str:
    """A phase's bound and what it expects of the faulted real server, in a cell."""
    members = "; ".join(f"{node} {'in' if kept else 'out of'} IPVS" for node, kept in phase.members.items())
    return f"{phase.bound * 1000:.0f} ms" + (f" ({members})" if members else "")


def network_faults() -> str:
    """The network faults as data: where each is made, what each phase expects, where CI runs it."""
    rows = [
        (
            f"`{entry.name}`",
            entry.description.format(node="(target)"),
            WHERE[entry.primitive],
            TARGETS[entry.target],
            _expects(entry.on_fault),
            _expects(entry.on_heal),
            ", ".join(f"`{lab}`" for lab in entry.ci) or "on request",
        )
        for entry in scenarios.NETWORK
    ]
    header = ("scenario", "what happens", "made", "target", "the fault's phase", "the heal's phase", "CI")
    return _table(header, rows)


def bound_formulas() -> str:
    """Every bound a phase may name, what it is, and its value on the seed lab."""
    seed = spec.load(paths.DEFAULT_LAB)
    rows = []
    for name, formula in bounds.FORMULAS.items():
        bound = formula(seed)
        rows.append((f"`{name}`", _paragraph(formula), f"{bound.seconds * 1000:.0f} ms: {bound.basis}"))
    return _table(("bound", "what it is", "on the seed lab"), rows) + (
        f"\nThe margin over every bound, unless `--margin` says otherwise: {DEFAULT_MARGIN}. "
        f"TCP's minimum retransmission timeout in the stall bound: {established.RTO_MIN * 1000:.0f} ms.\n"
    )


def bounds_per_lab() -> str:
    """Each phase's bound in ms on every shipped lab: what `test.failover --list-scenarios` prints."""
    labs = [spec.load(path) for path in paths.shipped_labs()]
    runs = {lab.name: [*scenarios.scenarios(lab), scenarios.soak(lab)] for lab in labs}
    first = runs[labs[0].name]
    rows = []
    for s, run in enumerate(first):
        for p, phase in enumerate(run.phases):
            cells = [f"{runs[lab.name][s].phases[p].bound * 1000:.0f}" for lab in labs]
            rows.append((f"`{run.name}`", phase.name, *cells))
    return _table(("scenario", "phase (seed's nodes)", *(f"`{lab.name}`" for lab in labs)), rows)


# --- a shipped lab file, as it is -------------------------------------------------------


def persistent_lab() -> str:
    """labs/persistent.yaml whole: the walkthrough's lab file is the file the suite boots."""
    return f"```yaml\n{(paths.LABS / 'persistent.yaml').read_text()}```\n"


GENERATORS: dict[str, Callable[[], str]] = {
    "lab-file-fields": lab_file_fields,
    "lab-rules": lab_rules,
    "tasks": tasks,
    "short-flags": short_flags,
    "fault-catalogue": fault_catalogue,
    "gray-catalogue": gray_catalogue,
    "gray-bounds": gray_bounds,
    "network-faults": network_faults,
    "bound-formulas": bound_formulas,
    "bounds-per-lab": bounds_per_lab,
    "persistent-lab": persistent_lab,
}
