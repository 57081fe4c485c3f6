"""The fetch chain: verification, the cache, clear failures, and nothing half-written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from halab import pins, sources
from halab.pins import Pin

GOOD = b"the real tarball bytes"
PIN = Pin("nginx", "1.22.1", hashlib.sha256(GOOD).hexdigest(), ("http://127.0.0.1:9/nginx-1.22.1.tar.gz",), "nginx")


class Serves:
    """A mirror handing out fixed bytes, counting how often it was asked."""

    def __init__(self, data: bytes) -> None:
        self.data, self.calls = data, 0

    def __str__(self) -> str:
        return "a test mirror"

    def fetch(self, pin, dest: Path, progress) -> None:
        self.calls += 1
        dest.write_bytes(self.data)


class Lacks:
    def __str__(self) -> str:
        return "an empty mirror"

    def fetch(self, pin, dest, progress) -> None:
        raise sources.Miss("does not have it")


def test_fetch_verifies_and_caches(tmp_path):
    path = sources.fetch(PIN, tmp_path, [Lacks(), Serves(GOOD)], progress=lambda _: None)
    assert path == tmp_path / "nginx-1.22.1.tar.gz" and path.read_bytes() == GOOD
    assert list(tmp_path.iterdir()) == [path]


def test_cache_hit_asks_no_mirror(tmp_path):
    (tmp_path / PIN.filename).write_bytes(GOOD)
    mirror = Serves(b"never used")
    assert sources.fetch(PIN, tmp_path, [mirror], progress=lambda _: None).read_bytes() == GOOD
    assert mirror.calls == 0


def test_checksum_mismatch_deletes_the_download_and_names_both_sums(tmp_path):
    bad = b"tampered"
    with pytest.raises(sources.ChecksumMismatch) as caught:
        sources.fetch(PIN, tmp_path, [Serves(bad)], progress=lambda _: None)
    message = str(caught.value)
    assert "nginx-1.22.1.tar.gz" in message and PIN.sha256 in message and hashlib.sha256(bad).hexdigest() in message
    assert list(tmp_path.iterdir()) == []


def test_corrupt_cache_copy_is_removed_reported_and_refetched(tmp_path):
    (tmp_path / PIN.filename).write_bytes(b"bit rot")
    said: list[str] = []
    path = sources.fetch(PIN, tmp_path, [Serves(GOOD)], progress=said.append)
    assert path.read_bytes() == GOOD
    assert any("cached copy is corrupt" in line and PIN.sha256 in line for line in said)


def test_corrupt_cache_with_nothing_to_refetch_leaves_no_file(tmp_path):
    (tmp_path / PIN.filename).write_bytes(b"bit rot")
    with pytest.raises(sources.SourceError):
        sources.fetch(PIN, tmp_path, [Lacks()], progress=lambda _: None)
    assert list(tmp_path.iterdir()) == []


def test_no_network_says_what_was_tried_and_where_to_put_the_file(tmp_path):
    """The pinned URL points at a closed local port: the same as no network, without using one."""
    with pytest.raises(sources.SourceError) as caught:
        sources.fetch(PIN, tmp_path, [sources.UrlMirror(timeout=5), Lacks()], progress=lambda _: None)
    message = str(caught.value)
    assert "http://127.0.0.1:9/nginx-1.22.1.tar.gz" in message and "Connection refused" in message
    assert "an empty mirror: does not have it" in message
    assert str(tmp_path / PIN.filename) in message and PIN.sha256 in message
    assert list(tmp_path.iterdir()) == []


def test_pin_without_a_sum_is_refused(tmp_path):
    pin = pins.pin("keepalived", "2.0.6")
    with pytest.raises(sources.SourceError, match="pinned without a sha256"):
        sources.fetch(pin, tmp_path, [Serves(GOOD)], progress=lambda _: None)


def test_deb_src_entries_mirror_the_system_archives_only(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "deb http://archive.example/ubuntu jammy main universe\ndeb https://vendor.example/apt stable main\n"
    )
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    assert sources.deb_src_entries(tmp_path) == [
        "deb-src http://archive.example/ubuntu jammy main universe",
        "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian bookworm main",
        "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian "
        "bookworm-updates main",
    ]
