"""What the build scripts would run, without compiling: flags, the -fcommon rule, the cache key."""

from __future__ import annotations

import fcntl
import shutil
import threading
import time

import pytest

from halab import build, paths, pins
from halab.errors import BuildError
from tests.fixtures import WRITE_UP_NGINX_FLAGS


def test_nginx_is_configured_with_the_write_up_s_flags():
    assert build.plan(pins.pin("nginx", "1.17.8")) == f"nginx 1.17.8: ./configure {WRITE_UP_NGINX_FLAGS}"


@pytest.mark.parametrize(
    ("version", "gcc", "fcommon"),
    [
        ("2.0.6", "12", True),
        ("2.0.6", "10", True),
        ("2.0.6", "9", False),
        ("2.2.7", "12", False),
        ("2.3.1", "14", False),
    ],
)
def test_fcommon_only_for_keepalived_before_2_0_14_on_gcc_10_and_newer(monkeypatch, version, gcc, fcommon):
    monkeypatch.setenv("GCC_MAJOR", gcc)
    line = build.plan(pins.pin("keepalived", version))
    assert line.startswith(f"keepalived {version}: ") and "--prefix=/usr/local/keepalived" in line
    assert ("-fcommon" in line) is fcommon


def test_cache_key_changes_with_the_script_and_the_pin_only(tmp_path, monkeypatch):
    pin = pins.pin("nginx", "1.22.1")
    provision = tmp_path / "provision"
    shutil.copytree(paths.PROVISION, provision)
    monkeypatch.setattr(paths, "PROVISION", provision)
    first = build.key(pin)
    assert build.key(pin) == first
    script = provision / "build-nginx.sh"
    script.write_text(script.read_text() + "\n# a change\n")
    assert build.key(pin) != first
    assert build.key(pins.pin("nginx", "1.17.8")) != build.key(pin)


def test_a_missing_build_is_found_or_named_with_the_command_that_makes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HALAB_HOME", str(tmp_path))
    monkeypatch.setattr(build.versions, "build_hint", lambda name, version: f"`make {name}`")
    wanted = {"keepalived": "2.2.7", "nginx": "1.22.1"}
    with pytest.raises(BuildError, match=r"keepalived 2\.2\.7: `make keepalived`; nginx 1\.22\.1: `make nginx`"):
        build.built(wanted)
    pin = pins.pin("keepalived", "2.2.7")
    root = build.location(pin, build.key(pin))
    root.mkdir(parents=True)
    (root / "build.json").write_text("{}")
    assert (build.how_to_build("keepalived", "2.2.7"), build.how_to_build("nginx", "1.22.1")) == ("", "`make nginx`")
    assert build.built({"keepalived": "2.2.7"})["keepalived"].root == root


def test_a_second_run_waits_for_the_build_in_progress_and_compiles_nothing(tmp_path, monkeypatch):
    """Two runs sharing one cache: the second waits on the first's lock, then takes its build."""
    monkeypatch.setenv("HALAB_HOME", str(tmp_path))
    pin = pins.pin("keepalived", "2.2.7")
    root = build.location(pin, build.key(pin))
    compiled = []
    monkeypatch.setattr(build, "_compile", lambda *args: compiled.append(args))
    lock = root.with_name(root.name + ".lock")
    lock.parent.mkdir(parents=True)
    seen: list[str] = []
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waiting = threading.Thread(target=build.ensure, args=(pin, seen.append))
        waiting.start()
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen and "another run is building it" in seen[0], seen
        root.mkdir()
        (root / "build.json").write_text("{}")
    waiting.join(10)
    assert not waiting.is_alive() and compiled == [], compiled
    assert "built meanwhile by another run" in seen[-1], seen
