"""Which versions a run uses: substitution for demo's defaults, refusal everywhere else."""

from __future__ import annotations

import pytest

from halab import paths, sources, spec, versions
from halab.errors import SourceError
from halab.sources import Miss


class Has:
    """A mirror holding some files (by name), asked how many times it was asked."""

    def __init__(self, *files: str) -> None:
        self.files = set(files)
        self.asked: list[str] = []

    def __str__(self) -> str:
        return "a test mirror"

    def has(self, pin) -> None:
        self.asked.append(pin.filename)
        if pin.filename not in self.files:
            raise Miss("not here")

    def fetch(self, pin, dest, progress) -> None:
        raise AssertionError("availability must not download")


@pytest.fixture
def mirror(home, monkeypatch) -> Has:
    found = Has("keepalived-2.2.7.tar.gz", "nginx-1.22.1.tar.gz")
    monkeypatch.setattr(sources, "default_mirrors", lambda: [found])
    return found


def test_availability_is_asked_once_and_cached(mirror):
    pin = versions.pins.pin("nginx", "1.17.8")
    assert sources.available(pin, progress=lambda _: None) == ""
    assert sources.available(pin, progress=lambda _: None) == ""
    assert mirror.asked == ["nginx-1.17.8.tar.gz"]
    assert (paths.sources() / "availability.json").exists()


def test_nearest_prefers_the_same_line_then_the_newest(mirror):
    assert versions.nearest("nginx", "1.17.8") == ("1.22.1", "a test mirror")
    mirror.files.add("nginx-1.17.10.tar.gz")
    (paths.sources() / "availability.json").unlink()
    assert versions.nearest("nginx", "1.17.8") == ("1.17.10", "a test mirror")


def test_demo_substitutes_a_default_and_says_so(mirror):
    lab = spec.load()
    choices = versions.resolve(lab, lab_given=False, substitute=True, progress=lambda _: None)
    nginx = next(c for c in choices if c.name == "nginx")
    assert (nginx.asked, nginx.used, nginx.origin) == ("1.17.8", "1.22.1", "default")
    assert "nginx 1.22.1 instead of the lab's default 1.17.8" in nginx.sentence()
    assert versions.applied(lab, choices).versions.nginx == "1.22.1"


def test_strict_versions_refuse_in_one_line_with_the_command_that_works(mirror, monkeypatch):
    monkeypatch.setattr("sys.argv", ["invoke", "demo", "--strict-versions"])
    with pytest.raises(SourceError) as refused:
        versions.resolve(spec.load(), lab_given=False, substitute=False, progress=lambda _: None)
    assert "\n" not in str(refused.value)
    assert "`HALAB_NGINX_VERSION=1.22.1 invoke demo --strict-versions`" in str(refused.value)


def test_an_explicit_version_is_never_substituted(mirror, monkeypatch):
    monkeypatch.setenv("HALAB_NGINX_VERSION", "1.17.10")
    choices = versions.resolve(spec.load(), lab_given=False, substitute=True, progress=lambda _: None)
    assert [(c.used, c.origin) for c in choices if c.name == "nginx"] == [("1.17.10", "environment")]
    with pytest.raises(SourceError, match="set by HALAB_NGINX_VERSION"):
        versions.strict(spec.load(), lab_given=False)


def test_the_build_hint_names_a_command_that_works_here(mirror, monkeypatch):
    monkeypatch.delenv("HALAB_LAUNCHER", raising=False)
    assert versions.build_hint("keepalived", "2.2.7") == "`invoke build`"
    hint = versions.build_hint("nginx", "1.17.8")
    assert hint.startswith("`HALAB_NGINX_VERSION=1.22.1 invoke build` (nginx 1.17.8 cannot be had on this host")


def test_demo_tells_the_other_tasks_the_substituted_versions(mirror, capsys):
    from halab.tasks import demo

    choices = versions.resolve(spec.load(), lab_given=False, substitute=True, progress=lambda _: None)
    demo._day_two(choices)
    assert "export HALAB_NGINX_VERSION=1.22.1" in capsys.readouterr().out
