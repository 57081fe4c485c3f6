"""Local-lab orphans (halab.providers.local.orphans): found by their names alone, and only
the local lab's: a Vagrant lab's private libvirt namespace is never one."""

from __future__ import annotations

import pytest

from halab import paths
from halab.paths import LabPaths
from halab.providers.local import netns, orphans


@pytest.fixture
def unregistered(tmp_path, monkeypatch):
    """This checkout's state in tmp_path, registered nowhere: each of its names is an orphan's."""
    monkeypatch.setenv("HALAB_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(paths, "REGISTRY", tmp_path / "registry")


def test_a_vagrant_labs_private_libvirt_namespace_is_neither_an_orphan_nor_a_local_labs(unregistered, monkeypatch):
    # Bug: the orphan pattern matched halab-<id>-<lab>-vms, the namespace of the Vagrant lab
    # `a`'s private libvirt, which was also the namespace of the local lab `a-vms`: either
    # lab's teardown or `lab.down --orphans` could delete the other's or SIGKILL its processes.
    vagrant_lab, local_lab, other_local = LabPaths("a"), LabPaths("a-vms"), LabPaths("b")
    assert vagrant_lab.libvirt_netns != local_lab.netns
    monkeypatch.setattr(netns, "names", lambda: [vagrant_lab.libvirt_netns, other_local.netns])
    ours = [orphan for orphan in orphans.find() if orphan.checkout == paths.checkout_id()]
    assert [(orphan.lab, orphan.netns) for orphan in ours] == [("b", other_local.netns)]


def test_an_orphans_guests_are_found_by_their_tags(unregistered, monkeypatch):
    monkeypatch.setattr(netns, "names", list)
    monkeypatch.setattr(orphans, "arguments", lambda prefix: {f"umid={LabPaths('c').guest_tag('server1')}"})
    (found,) = orphans.find()
    assert (found.checkout, found.lab) == (paths.checkout_id(), "c")
    assert found.tag == f"umid={LabPaths('c').guest_tag()}" and found.netns == LabPaths("c").netns


def test_a_registered_checkouts_labs_are_no_orphans(unregistered, monkeypatch):
    monkeypatch.setattr(netns, "names", lambda: [LabPaths("b").netns])
    paths.labs().mkdir(parents=True)
    orphans.register()
    assert [orphan for orphan in orphans.find() if orphan.checkout == paths.checkout_id()] == []
