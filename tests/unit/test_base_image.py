"""Debian's base disk image without building it: what names it (the input hash), that it holds
every package the provision scripts would install (so VMs need no network), and that the
scripts never reach for pip."""

from __future__ import annotations

import re
import shutil

import pytest

from halab import paths
from halab.errors import ImageError, UsageError
from halab.images import base


@pytest.fixture
def apt_root(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://archive.invalid/debian\nSuites: bookworm\nComponents: main\n"
    )
    return tmp_path


def test_the_base_image_is_named_by_its_inputs(apt_root, tmp_path, monkeypatch):
    first = base.plan("debian-12", apt_root)
    assert base.plan("debian-12", apt_root) == first
    assert first.path.name == f"debian-12-{first.key[:16]}.qcow2" and first.kernel.suffix == ".vmlinuz"
    (apt_root / "sources.list.d" / "debian.sources").write_text("Types: deb\nURIs: http://other.invalid/debian\n")
    assert base.plan("debian-12", apt_root).key != first.key  # another archive, another image
    hook = tmp_path / "debian.sh"
    shutil.copy(base.HOOK, hook)
    hook.write_text(hook.read_text() + "\n# changed\n")
    monkeypatch.setattr(base, "HOOK", hook)
    assert base.plan("debian-12", apt_root).key not in (first.key, base.plan("debian-12").key)


def test_only_debian_has_a_base_image_and_the_error_says_what_to_run(apt_root):
    with pytest.raises(
        UsageError, match=r"debian-12 only; rocky-9 is installed from its ISO.*image.build --os rocky-9"
    ):
        base.plan("rocky-9", apt_root)


def test_a_host_without_debian_sources_is_told_so(tmp_path):
    with pytest.raises(ImageError, match="no Debian archive configured"):
        base.apt_sources(tmp_path)


def _debian_packages_installed_by(script: str) -> set[str]:
    """The Debian packages (first argument) of every install_packages call in a provision script."""
    calls = re.findall(r'^[^#\n]*install_packages\s+"([^"]*)"', (paths.PROVISION / script).read_text(), re.M)
    return {package for call in calls for package in call.split()}


@pytest.mark.parametrize("script", ["build-keepalived.sh", "build-nginx.sh", "image.sh", "node.sh", "lib.sh"])
def test_the_image_holds_every_package_the_scripts_install_so_vms_need_no_network(script):
    assert _debian_packages_installed_by(script) - set(base.PACKAGES) == set()


def test_no_provision_script_installs_with_pip():
    # Debian refuses system-wide pip installs (PEP 668), and a baked box may have no network.
    for script in paths.PROVISION.glob("*.sh"):
        assert "pip install" not in script.read_text(), script.name
