"""A small tokenizer of keepalived's block syntax, for what keepalived's dump lacks.

This host's checker cannot load `virtual_server` blocks without the ip_vs module, and the
dump does not name the scripts a file refers to, so those are read from the source. The
file is hostile input: it is read word by word (never by regexes over the whole file), its
includes, `@id` conditionals and `$VARIABLE`s are resolved as keepalived does, and sizes,
nesting and include depth are bounded; anything else is refused naming the file and line.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

from halab.errors import UsageError

# keepalived reads lines into a 1024-byte buffer; longer ones are cut, never meant.
MAX_LINE = 1024
# The biggest real-world files are a few thousand lines; these bound a hostile one.
MAX_FILE_BYTES = 256 * 1024
MAX_FILES = 64
MAX_TOTAL_BYTES = 1024 * 1024
MAX_INCLUDE_DEPTH = 8
MAX_NESTING = 16
MAX_WORDS_PER_LINE = 256
MAX_VARIABLES = 256


class ConfigRefused(UsageError):
    """An imported file refused: the message names the file and line."""


@dataclass(frozen=True)
class Where:
    """A position as a person counts it: file and line (from 1)."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Item:
    """One statement: its words, where it is, and its block's statements if it opened one."""

    words: tuple[str, ...]
    where: Where
    block: list[Item] | None = None

    @property
    def keyword(self) -> str:
        return self.words[0] if self.words else ""

    def find(self, keyword: str) -> list[Item]:
        """The statements of this block with that keyword, in order."""
        return [item for item in self.block or [] if item.keyword == keyword]

    def first(self, keyword: str) -> Item | None:
        found = self.find(keyword)
        return found[0] if found else None

    def value(self, keyword: str, default: str | None = None) -> str | None:
        """The first argument of the first statement with that keyword."""
        item = self.first(keyword)
        return item.words[1] if item and len(item.words) > 1 else default


@dataclass
class Source:
    """A configuration as one director's keepalived reads it: statements and the files it read."""

    root: Path
    config_id: str
    items: list[Item]
    files: list[Path] = field(default_factory=list)
    conditions: set[str] = field(default_factory=set)

    def find(self, keyword: str) -> list[Item]:
        return [item for item in self.items if item.keyword == keyword]


def refuse(where: Where | str, why: str) -> ConfigRefused:
    return ConfigRefused(f"{where}: {why}")


class _Reader:
    """Reads one configuration: lines (with includes, conditionals, variables) into statements."""

    def __init__(self, main: Path, config_id: str) -> None:
        self.root = main.parent.resolve()
        self.config_id = config_id
        self.files: list[Path] = []
        self.total = 0
        self.variables: dict[str, str] = {}
        self.conditions: set[str] = set()

    def lines(self, path: Path, depth: int, where: Where | str) -> list[tuple[list[str], Where]]:
        """Each line of path as words, includes followed, conditionals applied, variables replaced."""
        if depth > MAX_INCLUDE_DEPTH:
            raise refuse(where, f"includes nest deeper than {MAX_INCLUDE_DEPTH} files")
        if len(self.files) >= MAX_FILES:
            raise refuse(where, f"more than {MAX_FILES} files are included")
        text = self._read(path, where)
        name = self._shown(path)
        self.files.append(path)
        out: list[tuple[list[str], Where]] = []
        for number, raw in enumerate(text.split("\n"), start=1):
            here = Where(name, number)
            if len(raw.encode()) > MAX_LINE:
                raise refuse(here, f"a line longer than {MAX_LINE} bytes (keepalived would cut it)")
            line = self._conditional(raw.strip(), here)
            if line is None:
                continue
            if _defines(line):
                self._define(line, here)
                continue
            words = words_of(self._substitute(line, here), here)
            if not words:
                continue
            if words[0] == "include":
                out += self._include(words, path, depth, here)
                continue
            out.append((words, here))
        return out

    def _read(self, path: Path, where: Where | str) -> str:
        try:
            with path.open("rb") as stream:
                data = stream.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise refuse(where, f"cannot read {path}: {exc.strerror}") from None
        if len(data) > MAX_FILE_BYTES:
            raise refuse(where, f"{path} is larger than {MAX_FILE_BYTES} bytes, the most an imported file may be")
        self.total += len(data)
        if self.total > MAX_TOTAL_BYTES:
            raise refuse(where, f"the files together are larger than {MAX_TOTAL_BYTES} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise refuse(where, f"{path} is not UTF-8 text (byte offset {exc.start})") from None
        bad = next((c for c in text if (c < " " and c not in "\t\n\r") or c == "\x7f"), None)
        if bad is not None:
            line = text.count("\n", 0, text.index(bad)) + 1
            raise refuse(Where(self._shown(path), line), f"control character U+{ord(bad):04X}; a config is text")
        return text

    def _shown(self, path: Path) -> str:
        """A file as messages and the table name it: relative to the main file's directory."""
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)

    def _conditional(self, line: str, here: Where) -> str | None:
        """The line without its `@id` / `@^id` mark, or None when it is not for this config id."""
        if not line.startswith("@"):
            return line
        mark, _, rest = line.partition(" ")
        negated = mark.startswith("@^")
        ident = mark[2:] if negated else mark[1:]
        if not ident or not all(c.isalnum() or c in "._-" for c in ident):
            raise refuse(here, f"{mark!r} is not a conditional keepalived reads (@id or @^id, id a plain word)")
        self.conditions.add(ident)
        return rest.strip() if (ident == self.config_id) != negated else None

    def _define(self, line: str, here: Where) -> None:
        """`$NAME=value`: a variable, as keepalived's parser defines it (no multi-line ones)."""
        name, _, value = line[1:].partition("=")
        name = name.strip()
        if value.rstrip().endswith("\\"):
            raise refuse(here, "multi-line variable definitions are not imported; write the value on one line")
        if len(self.variables) >= MAX_VARIABLES and name not in self.variables:
            raise refuse(here, f"more than {MAX_VARIABLES} variables")
        self.variables[name] = self._substitute(value.strip(), here)

    def _substitute(self, line: str, here: Where) -> str:
        """$NAME and ${NAME} replaced by their values, once (a value's own $ stays as written)."""
        if "$" not in line:
            return line
        out, index = [], 0
        while index < len(line):
            char = line[index]
            if char != "$":
                out.append(char)
                index += 1
                continue
            braced = line.startswith("${", index)
            start = index + (2 if braced else 1)
            end = start
            while end < len(line) and (line[end].isalnum() or line[end] == "_"):
                end += 1
            name = line[start:end]
            if not name and not braced:
                out.append(char)  # a $ before no name is text to keepalived too
                index += 1
                continue
            if braced and not line.startswith("}", end):
                raise refuse(here, "an unclosed ${ in a variable reference")
            if name not in self.variables:
                raise refuse(here, f"${name} is used but never defined (keepalived would keep it as text)")
            out.append(self.variables[name])
            index = end + (1 if braced else 0)
            if len(out) > MAX_LINE:
                raise refuse(here, f"variables expand beyond {MAX_LINE} bytes")
        return "".join(out)

    def _include(self, words: list[str], current: Path, depth: int, here: Where) -> list[tuple[list[str], Where]]:
        """`include PATTERN`: relative to the including file, /etc/keepalived/ meaning the main
        file's directory; every match must stay inside that directory."""
        if len(words) != 2:
            raise refuse(here, "include takes one file or pattern")
        pattern = words[1]
        if pattern.startswith("/etc/keepalived/"):
            pattern = str(self.root / pattern[len("/etc/keepalived/") :])
        elif not pattern.startswith("/"):
            pattern = str(current.parent / pattern)
        matches = sorted(glob.glob(pattern))[: MAX_FILES + 1]
        if not matches and not glob.has_magic(pattern):
            raise refuse(here, f"include {words[1]}: no such file beside the imported configuration")
        out: list[tuple[list[str], Where]] = []
        for match in matches:
            path = Path(match).resolve()
            if not path.is_relative_to(self.root):
                raise refuse(
                    here,
                    f"include {words[1]} reaches {match}, outside {self.root}; "
                    "allowed: files in the imported configuration's directory (or /etc/keepalived/...)",
                )
            out += self.lines(path, depth + 1, here)
        return out


def _defines(line: str) -> bool:
    """A `$NAME=value` line (a definition); `$NAME` alone is a use, replaced like any other."""
    name, equals, _ = line[1:].partition("=")
    return line.startswith("$") and bool(equals) and name.strip().replace("_", "a").isalnum()


def words_of(line: str, here: Where) -> list[str]:
    """A line's words as keepalived splits them: blanks separate, `"..."` is one word,
    `!` or `#` outside quotes starts a comment, `{` and `}` are words of their own."""
    words: list[str] = []
    index = 0
    while index < len(line):
        char = line[index]
        if char in " \t\r":
            index += 1
        elif char in "!#":
            break
        elif char in "{}":
            words.append(char)
            index += 1
        elif char == '"':
            end = line.find('"', index + 1)
            if end < 0:
                raise refuse(here, "an unclosed quote")
            words.append(line[index + 1 : end])
            index = end + 1
        else:
            end = index
            while end < len(line) and line[end] not in ' \t\r{}"!#':
                end += 1
            words.append(line[index:end])
            index = end
        if len(words) > MAX_WORDS_PER_LINE:
            raise refuse(here, f"more than {MAX_WORDS_PER_LINE} words on one line")
    if words and words[0].startswith("~"):
        raise refuse(here, f"{words[0]}: keepalived's ~SEQ lines are not imported; write the lines out")
    return words


def statements(lines: list[tuple[list[str], Where]]) -> list[Item]:
    """Lines into nested statements; braces must balance and nest at most MAX_NESTING deep."""
    top: list[Item] = []
    stack: list[list[Item]] = [top]
    opened: list[Where] = []
    for words, here in lines:
        current: Item | None = None
        for word in words:
            if word == "{":
                if len(stack) > MAX_NESTING:
                    raise refuse(here, f"blocks nest deeper than {MAX_NESTING} levels")
                owner = current or (stack[-1][-1] if stack[-1] and stack[-1][-1].block is None else None)
                if owner is None:
                    raise refuse(here, "a { that opens no statement's block")
                owner.block = []
                stack.append(owner.block)
                opened.append(here)
                current = None
            elif word == "}":
                if len(stack) == 1:
                    raise refuse(here, "a } that closes no block")
                stack.pop()
                opened.pop()
                current = None
            elif current is None:
                current = Item((word,), here)
                stack[-1].append(current)
            else:
                current.words += (word,)
    if opened:
        raise refuse(opened[-1], "a block opened here is never closed")
    return top


def read(main: Path, config_id: str) -> Source:
    """The configuration in main as keepalived with this config id reads it."""
    reader = _Reader(main, config_id)
    lines = reader.lines(main.resolve(), 0, str(main))
    return Source(reader.root, config_id, statements(lines), reader.files, reader.conditions)


def conditions(main: Path) -> set[str]:
    """The config ids a file's `@id` lines name: one file for several directors names each."""
    reader = _Reader(main, "")
    reader.lines(main.resolve(), 0, str(main))
    return reader.conditions
