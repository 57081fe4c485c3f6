"""Host builds of keepalived and nginx, cached by everything that affects the result.

The key hashes the pin (name, version, sha256), the build script and the helpers it
sources, and the script's own plan (its configure flags, which depend on the compiler).
A build lands in <home>/cache/builds/<name>-<version>-<key>/ only when it completed;
a failed one leaves nothing but its log. The local lab runs these builds, and the
config tests check rendered files with them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from halab import durations, paths, pins, sources, versions
from halab.errors import BuildError
from halab.pins import Pin
from halab.sources import Progress

BINARIES = {"keepalived": "usr/local/keepalived/sbin/keepalived", "nginx": "usr/local/nginx/sbin/nginx"}


@dataclass(frozen=True)
class Build:
    """A finished build: its staged install tree and whether this call compiled it."""

    pin: Pin
    key: str
    root: Path
    compiled: bool

    @property
    def binary(self) -> Path:
        return self.root / BINARIES[self.pin.name]


def script(name: str) -> Path:
    return paths.PROVISION / f"build-{name}.sh"


def plan(pin: Pin) -> str:
    """The configure command the script would run for this pin (nothing is built)."""
    result = subprocess.run(
        ["sh", str(script(pin.name)), f"/plan/{pin.filename}"],
        env={**os.environ, "HALAB_PLAN": "1"},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return result.stdout.strip()


def key(pin: Pin) -> str:
    """What makes two builds the same: the pin, the scripts' text and the flags they choose."""
    digest = hashlib.sha256()
    for part in (
        pin.name,
        pin.version,
        pin.sha256 or "",
        script(pin.name).read_text(),
        (paths.PROVISION / "lib.sh").read_text(),
        plan(pin),
    ):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:16]


def inputs_digest(versions: dict[str, str]) -> str:
    """sha256 over what decides the compiled daemons wherever they are built (host, Packer,
    Vagrant): the pins and the provision scripts. A test run records it as what it proved;
    an image records it as what it contains."""
    digest = hashlib.sha256()
    for name, version in sorted(versions.items()):
        digest.update(f"pin {name} {version} {pins.pin(name, version).sha256}\n".encode())
    for path in sorted(paths.PROVISION.glob("*.sh")):
        digest.update(f"file {path.name} {len(path.read_bytes())}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def location(pin: Pin, build_key: str) -> Path:
    return paths.builds() / f"{pin.name}-{pin.version}-{build_key}"


def find(pin: Pin) -> Build | None:
    """The cached build of this pin, if one with the current key exists."""
    build_key = key(pin)
    root = location(pin, build_key)
    return Build(pin, build_key, root, compiled=False) if (root / "build.json").exists() else None


def how_to_build(name: str, version: str) -> str:
    """Nothing when name version is built on this host; else the command that builds it here
    (versions.build_hint): what a preflight shows beside its missing build."""
    return "" if find(pins.pin(name, version)) else versions.build_hint(name, version)


def built(wanted: Mapping[str, str]) -> dict[str, Build]:
    """The host build of each product (name -> version), compiling nothing: what runs a lab or a
    config test must not start a long compile unasked. A BuildError says how to make each one missing."""
    found: dict[str, Build] = {}
    missing = []
    for name, version in wanted.items():
        cached = find(pins.pin(name, version))
        if cached:
            found[name] = cached
        else:
            missing.append(f"{name} {version}: {versions.build_hint(name, version)}")
    if missing:
        raise BuildError(f"not built on this host yet; build {'; '.join(missing)}")
    return found


def ensure(pin: Pin, progress: Progress = print) -> Build:
    """A build of this pin: the cached one, or compiled now."""
    cached = find(pin)
    if cached:
        progress(f"{pin.name} {pin.version}: up to date, nothing to do ({cached.root})")
        return cached
    build_key = key(pin)
    root = location(pin, build_key)
    with _exclusive(root.with_name(root.name + ".lock"), f"{pin.name} {pin.version}", progress):
        cached = find(pin)
        if cached:
            progress(f"{pin.name} {pin.version}: built meanwhile by another run ({cached.root})")
            return cached
        return _compile(pin, build_key, root, progress)


@contextlib.contextmanager
def _exclusive(lock: Path, what: str, progress: Progress) -> Iterator[None]:
    """One compile per build key on this host: two runs sharing the cache (two shells, a
    test run beside a task) would otherwise compile into the same staging directory and
    remove it under each other."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"{what}: another run is building it on this host; waiting for it")
            fcntl.flock(held, fcntl.LOCK_EX)
        yield


def _compile(pin: Pin, build_key: str, root: Path, progress: Progress) -> Build:
    """Fetch the pin's tarball and compile it into the cache, atomically (a staging directory renamed)."""
    tarball = sources.fetch(pin, progress=progress)
    staging = root.with_name(root.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    log = root.with_name(root.name + ".log")
    started = time.monotonic()
    try:
        # The last compile of this product here is the estimate (halab.durations): a cold
        # keepalived or nginx takes minutes with only the script's step lines to show.
        label = f"{pin.name} {pin.version}: the compile"
        with durations.Stage(f"compile {pin.name} {build_key}", label, progress) as stage:
            _run_script(pin, tarball, staging, log, progress)
            stage.finished("done", ok=True)
        (staging / "build.json").write_text(
            json.dumps(
                {
                    "name": pin.name,
                    "version": pin.version,
                    "sha256": pin.sha256,
                    "key": build_key,
                    "plan": plan(pin),
                    "seconds": round(time.monotonic() - started, 1),
                },
                indent=2,
            )
            + "\n"
        )
        os.replace(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress(f"{pin.name} {pin.version}: built in {time.monotonic() - started:.1f} s ({root})")
    return Build(pin, build_key, root, compiled=True)


def ensure_all(versions: dict[str, str], progress: Progress = print) -> dict[str, Build]:
    """A build of every product of a lab (name -> version): cached ones as they are, the rest compiled now."""
    return {name: ensure(pins.pin(name, version), progress) for name, version in versions.items()}


def _run_script(pin: Pin, tarball: Path, destdir: Path, log: Path, progress: Progress) -> None:
    """Run the provision script, echo its step lines as progress, keep the rest in the log."""
    with log.open("w") as out:
        process = subprocess.Popen(
            ["sh", str(script(pin.name)), str(tarball), str(destdir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        for line in process.stdout:
            out.write(line)
            if line.startswith("==> "):
                progress(f"{pin.name} {pin.version}: {line[4:].rstrip()}")
        if process.wait() != 0:
            tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
            raise BuildError(f"building {pin.name} {pin.version} failed; full log: {log}\n{tail}")
