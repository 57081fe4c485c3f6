"""Pinned upstream tarballs: where to find them, and proof they are the right bytes.

`fetch(pin)` walks a chain (the local cache, the pinned URLs, the distribution's source
package of the same upstream version) and returns a cached path whose sha256 matches the
pin. Every download lands in a temporary file next to the cache and is moved in only once
verified, so the cache never holds a half-written or wrong file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from halab import paths
from halab.environment import version_variable
from halab.errors import ChecksumMismatch, SourceError
from halab.pins import Pin

Progress = Callable[[str], None]


class Miss(Exception):
    """A mirror that does not have the file; the chain moves on to the next one."""


class Mirror(Protocol):
    def __str__(self) -> str: ...
    def fetch(self, pin: Pin, dest: Path, progress: Progress) -> None: ...

    def has(self, pin: Pin) -> None:
        """Whether this mirror would serve the file, asked without downloading it: raises Miss if not."""
        ...


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_mirrors() -> list[Mirror]:
    return [UrlMirror(), DebianSource(paths.apt_state())]


def cached(pin: Pin) -> Path:
    """Where the verified tarball of pin lives once fetched (it may not be there yet)."""
    return paths.sources() / pin.filename


def fetch(
    pin: Pin, cache: Path | None = None, mirrors: Sequence[Mirror] | None = None, progress: Progress = print
) -> Path:
    """A verified copy of the pinned tarball in the cache, fetching it if need be."""
    if pin.sha256 is None:
        raise SourceError(
            f"{pin.name} {pin.version} is pinned without a sha256, so it cannot be verified; "
            f"download {pin.urls[0]}, check it against upstream's announcement and "
            f"put its sha256 in {paths.PINS.name}"
        )
    target = cache / pin.filename if cache else cached(pin)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        actual = sha256_of(target)
        if actual == pin.sha256:
            return target
        target.unlink()
        progress(
            f"{target}: cached copy is corrupt (expected sha256 {pin.sha256}, got {actual}); deleted it, fetching again"
        )
    misses = []
    for mirror in default_mirrors() if mirrors is None else mirrors:
        try:
            return _fetch_from(mirror, pin, target, progress)
        except Miss as why:
            misses.append(f"  - {mirror}: {why}")
    raise SourceError(
        f"{pin.filename} could not be found anywhere:\n"
        + "\n".join(misses or ["  - no mirrors configured"])
        + f"\nPut the tarball there by hand (sha256 {pin.sha256}):\n  {target}"
        f"\nor choose another pinned version with {version_variable(pin.name)} (see `invoke build.sources`)."
    )


# How long the chain trusts what it learned about a file it has not fetched: a mirror
# that had it (a day), or that did not (an hour: networks come back).
KNOWN_FOR = {True: 86400.0, False: 3600.0}


def available(pin: Pin, mirrors: Sequence[Mirror] | None = None, progress: Progress = print) -> str:
    """Where the chain would get pin from ("" when nowhere), asked without downloading.

    The answer is cached in the sources cache (availability.json) for KNOWN_FOR, so listing
    or resolving versions does not ask the network again; a verified tarball in the cache
    always answers "cache".
    """
    if pin.sha256 is None:
        return ""
    if cached(pin).exists():
        return "cache"
    record = paths.sources() / "availability.json"
    known = json.loads(record.read_text()) if record.exists() else {}
    entry = known.get(pin.filename)
    if entry and time.time() - entry["checked"] < KNOWN_FOR[bool(entry["where"])]:
        return str(entry["where"])
    progress(f"asking where {pin.filename} can be had (not downloading it)")
    where = ""
    for mirror in default_mirrors() if mirrors is None else mirrors:
        try:
            mirror.has(pin)
        except Miss:
            continue
        where = str(mirror)
        break
    known[pin.filename] = {"where": where, "checked": time.time()}
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(known, indent=1) + "\n")
    return where


def _fetch_from(mirror: Mirror, pin: Pin, target: Path, progress: Progress) -> Path:
    """One mirror into a temporary file; moved into the cache only once its sha256 matches."""
    handle, name = tempfile.mkstemp(prefix=f".{pin.filename}.", suffix=".part", dir=target.parent)
    os.close(handle)
    partial = Path(name)
    try:
        progress(f"fetching {pin.filename} from {mirror}")
        mirror.fetch(pin, partial, progress)
        actual = sha256_of(partial)
        if actual != pin.sha256:
            raise ChecksumMismatch(f"{pin.filename} from {mirror}", str(pin.sha256), actual)
        os.replace(partial, target)
        progress(f"verified {pin.filename} (sha256 {actual[:16]}...)")
        return target
    finally:
        partial.unlink(missing_ok=True)


class UrlMirror:
    """The pinned upstream URLs, tried in order."""

    def __init__(self, timeout: float = 20.0) -> None:
        self.timeout = timeout

    def __str__(self) -> str:
        return "the pinned upstream URLs"

    def has(self, pin: Pin) -> None:
        """A HEAD request per URL, with a short timeout: enough to know, nothing downloaded."""
        errors = []
        for url in pin.urls:
            try:
                with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=min(self.timeout, 5)):
                    return
            except (urllib.error.URLError, OSError, ValueError) as exc:
                errors.append(f"{url} ({getattr(exc, 'reason', exc)})")
        raise Miss("; ".join(errors) or "no URL pinned")

    def fetch(self, pin: Pin, dest: Path, progress: Progress) -> None:
        errors = []
        for url in pin.urls:
            try:
                with urllib.request.urlopen(url, timeout=self.timeout) as response, dest.open("wb") as out:
                    shutil.copyfileobj(response, out)
                return
            except (urllib.error.URLError, OSError, ValueError) as exc:
                errors.append(f"{url} ({getattr(exc, 'reason', exc)})")
        raise Miss("; ".join(errors) or "no URL pinned")


class DebianSource:
    """`apt-get source --download-only` with a private apt state: the system's apt setup is untouched.

    The deb-src entries are derived from the system's own deb entries (same archive, same
    suites, same keyring), so a mirrored network works as well as a direct one.
    """

    def __init__(self, workdir: Path, max_age: float = 86400) -> None:
        self.workdir = workdir
        self.max_age = max_age

    def __str__(self) -> str:
        return "the distribution's source packages (apt-get source)"

    def has(self, pin: Pin) -> None:
        """`apt-get source --print-uris`: the archive's file list for the package, nothing downloaded."""
        options = self._ready(print_nothing)
        with tempfile.TemporaryDirectory(dir=self.workdir) as scratch:
            result = subprocess.run(
                ["apt-get", *options, "--print-uris", "source", pin.debian_source],
                cwd=scratch,
                capture_output=True,
                text=True,
                timeout=120,
            )
        if f"{pin.debian_source}_{pin.version}.orig.tar.gz" not in result.stdout:
            raise Miss(f"its {pin.debian_source} is not upstream {pin.version}")

    def _ready(self, progress: Progress) -> list[str]:
        """apt-get's options for the private state, its source index fresh enough."""
        if not shutil.which("apt-get"):
            raise Miss("apt-get not found (not a Debian/Ubuntu system)")
        entries = deb_src_entries()
        if not entries:
            raise Miss("no Debian/Ubuntu archive found in the apt sources")
        options = self._options(entries)
        self._update(options, progress)
        return options

    def fetch(self, pin: Pin, dest: Path, progress: Progress) -> None:
        options = self._ready(progress)
        with tempfile.TemporaryDirectory(dir=self.workdir) as scratch:
            # The Debian patches may be gone from the archive; only the .orig tarball matters.
            subprocess.run(
                ["apt-get", *options, "source", "--download-only", pin.debian_source],
                cwd=scratch,
                capture_output=True,
                text=True,
                timeout=600,
            )
            orig = Path(scratch) / f"{pin.debian_source}_{pin.version}.orig.tar.gz"
            if not orig.exists():
                found = sorted(p.name for p in Path(scratch).glob("*.orig.tar.*")) or ["nothing"]
                raise Miss(f"it has {', '.join(found)}, not upstream {pin.version}")
            shutil.move(orig, dest)

    def _options(self, entries: list[str]) -> list[str]:
        lists = self.workdir / "lists"
        (lists / "partial").mkdir(parents=True, exist_ok=True)
        source_list = self.workdir / "sources.list"
        text = "\n".join(entries) + "\n"
        if not source_list.exists() or source_list.read_text() != text:
            source_list.write_text(text)
            for stale in lists.glob("*_Sources*"):
                stale.unlink()
        return [
            "-o",
            f"Dir::Etc::SourceList={source_list}",
            "-o",
            "Dir::Etc::SourceParts=/nonexistent",
            "-o",
            f"Dir::State::Lists={lists}",
            "-o",
            "APT::Sandbox::User=root",
        ]

    def _update(self, options: list[str], progress: Progress) -> None:
        lists = self.workdir / "lists"
        indexes = list(lists.glob("*_Sources*"))
        if indexes and time.time() - min(p.stat().st_mtime for p in indexes) < self.max_age:
            return
        progress("refreshing the distribution's source index (private apt state, system untouched)")
        result = subprocess.run(["apt-get", *options, "update"], capture_output=True, text=True, timeout=600)
        if not list(lists.glob("*_Sources*")):
            raise Miss(f"apt-get update found no source index: {result.stderr.strip()[-300:]}")


def print_nothing(_: str) -> None:
    """A Progress that says nothing (availability checks run quietly)."""


def deb_src_entries(root: Path = Path("/etc/apt")) -> list[str]:
    """deb-src lines mirroring the system's Debian/Ubuntu `deb` entries (one-line and deb822 formats)."""
    entries = []
    for uri, suites, components, options in _deb_entries(root):
        if re.search(r"/(debian|ubuntu)(-security)?/?$", uri):
            for suite in suites:
                entries.append(f"deb-src {options}{uri} {suite} {' '.join(components)}".replace("  ", " "))
    return list(dict.fromkeys(entries))


def _deb_entries(root: Path):
    """(uri, suites, components, '[options] ') of each `deb` source the system uses."""
    one_line = [root / "sources.list", *sorted((root / "sources.list.d").glob("*.list"))]
    for path in one_line:
        for line in path.read_text().splitlines() if path.exists() else []:
            match = re.match(r"^deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$", line.strip())
            if match:
                yield match[2], [match[3]], match[4].split(), match[1] or ""
    for path in sorted((root / "sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.M))
            if "deb" in fields.get("Types", "").split() and "URIs" in fields:
                signed = f"[signed-by={fields['Signed-By']}] " if fields.get("Signed-By", "").startswith("/") else ""
                for uri in fields["URIs"].split():
                    yield uri, fields.get("Suites", "").split(), fields.get("Components", "").split(), signed
