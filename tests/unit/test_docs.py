"""The documentation site builds with `mkdocs build --strict`, and the checks that build makes
catch what they are there for: a broken link, a nav entry pointing nowhere, a page left out
of the nav, and a generated reference out of step with the code."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from halab import paths

CONFIG = paths.ROOT / "mkdocs.yml"
DOCS = paths.ROOT / "docs"


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of config into site, run from the checkout so its halab is the one described."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    result = build(CONFIG, target)
    assert result.returncode == 0, result.stdout + result.stderr
    return target


def test_the_site_builds_strictly(site):
    assert (site / "index.html").is_file()
    assert not [page for page in site.rglob("*.html") if "<!-- generated:" in page.read_text()]


def test_the_reference_is_generated_from_the_code(site):
    from halab import spec
    from halab.prove import scenarios
    from halab.tasks import SHORT_FLAGS

    fields = (site / "reference" / "lab-file" / "index.html").read_text()
    tasks = (site / "reference" / "tasks" / "index.html").read_text()
    faults = (site / "proving" / "faults" / "index.html").read_text()
    assert [name for name in spec.Vrrp.model_fields if name not in fields] == []
    assert "lab.up" in tasks and "--recreate" in tasks
    assert all(f"--{option}" in tasks for option in SHORT_FLAGS)
    assert [entry.name for entry in scenarios.CATALOGUE if entry.name not in faults] == []
    assert "3805" in faults  # the seed lab's crash bound, computed: 3 x 1 s + (256 - 50) / 256 s
    gray = (site / "proving" / "gray" / "index.html").read_text()
    assert [entry.name for entry in scenarios.GRAY if entry.name not in gray] == []
    assert "12000 ms (server1 out of IPVS)" in gray  # HTTP_GET drops a hung server: 3 + 3 + 1 x (3 + 3) s


def test_broken_links_pages_and_nav_entries_fail_the_build(tmp_path):
    """One build broken three ways: strict mode reports every warning before it aborts."""
    shutil.copytree(DOCS, tmp_path / "docs")
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text() + "\nSee [nowhere](nowhere.md).\n")
    (tmp_path / "docs" / "stray.md").write_text("# Stray: in no nav entry\n")
    config = CONFIG.read_text().replace("\nnav:\n", "\nnav:\n  - Gone: gone.md\n", 1)
    (tmp_path / "mkdocs.yml").write_text(config)
    result = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert [name for name in ("nowhere.md", "stray.md", "gone.md") if name not in output] == []


def hooks() -> types.ModuleType:
    """docs/hooks.py, as MkDocs loads it."""
    loaded = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


def test_an_unknown_generated_part_fails_the_build():
    from mkdocs.exceptions import PluginError

    page = types.SimpleNamespace(file=types.SimpleNamespace(src_uri="index.md"))
    with pytest.raises(PluginError, match=r"index\.md: unknown generated part 'no-such-part'"):
        hooks().on_page_markdown("# A page\n\n<!-- generated: no-such-part -->\n", page, None, None)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda text: text + "retired_field: a field the model no longer has\n", "no such field for ['retired_field']"),
        (lambda text: re.sub(r"^vrrp\.preempt: .*\n", "", text, flags=re.M), "no description for ['vrrp.preempt']"),
    ],
)
def test_field_descriptions_out_of_step_with_the_model_fail_the_build(tmp_path, monkeypatch, edit, named):
    from mkdocs.exceptions import PluginError

    module = hooks()
    descriptions = tmp_path / "lab-fields.yaml"
    descriptions.write_text(edit(module.DESCRIPTIONS.read_text()))
    monkeypatch.setattr(module, "DESCRIPTIONS", descriptions)
    with pytest.raises(PluginError, match=re.escape(named)):
        module.lab_file_fields()
