"""The pipeline's bookkeeping (halab.pipeline): stage order, what a failure or Ctrl-C leaves
run and not run, the lab destroyed in every case, the table and its files. The stages
themselves run for real in CI (`.ci/run`: test.pipeline)."""

from __future__ import annotations

import json

import pytest

from halab import paths, pipeline, providers
from halab.errors import ImageError

LISTING = """\
1700000000,,ui,info,some line
1700000000,,box-name,halab/debian-12
1700000000,,box-provider,libvirt
1700000000,,box-version,1795612038.0.0
1700000000,,box-name,rockylinux/9
1700000000,,box-provider,virtualbox
1700000000,,box-version,9.3.0
"""


def test_a_box_counts_as_added_only_for_its_name_provider_and_version():
    assert pipeline._has_box(LISTING, "halab/debian-12", "1795612038.0.0")
    assert not pipeline._has_box(LISTING, "halab/debian-12", "1.0.0")
    assert not pipeline._has_box(LISTING, "rockylinux/9", "9.3.0")  # virtualbox, not libvirt
    assert not pipeline._has_box("", "halab/debian-12", "1795612038.0.0")


class FakeProvider:
    """What the pipeline needs of its Vagrant provider: the lab, its paths, a footprint, a down()."""

    def __init__(self, lab, progress, hypervisor) -> None:
        self.lab = lab
        self.paths = paths.LabPaths(lab.name)
        self.hypervisor = hypervisor
        self.downs = 0

    @staticmethod
    def footprint(lab_paths: paths.LabPaths) -> str:
        return "five VMs"

    def down(self) -> None:
        self.downs += 1


@pytest.fixture
def run(home, monkeypatch) -> pipeline.Pipeline:
    monkeypatch.setattr(providers, "kind", lambda name: FakeProvider if name == "vagrant" else None)
    made = pipeline.Pipeline("debian-12", paths.DEFAULT_LAB, progress=lambda _: None)
    for name in ("_base", "_bake", "_box_add", "_up", "_acceptance", "_failover"):
        monkeypatch.setattr(made, name, lambda name=name: ("ok", name))
    return made


def test_every_stage_runs_in_order_and_the_table_and_files_say_passed(run):
    stages = run.run()
    assert [(s.name, s.result) for s in stages] == [(name, "ok") for name in pipeline.Pipeline.STAGES]
    assert run.passed and run.provider.lab.box == "halab/debian-12" and run.provider.hypervisor == "libvirt"
    assert [s.note for s in stages][-1] == "removed five VMs"
    table = (run.provider.paths.pipeline / "stages.txt").read_text()
    assert table.splitlines()[-1].split()[:2] == ["total", "passed"]
    assert json.loads((run.provider.paths.pipeline / "stages.json").read_text())["passed"] is True


def test_a_failed_stage_stops_the_later_ones_but_never_the_destruction(run, monkeypatch):
    def broken() -> tuple[str, str]:
        raise ImageError("the bake did not finish")

    monkeypatch.setattr(run, "_box_add", broken)
    results = {s.name: (s.result, s.note) for s in run.run()}
    assert results["box add"] == ("FAILED", "the bake did not finish")
    assert [results[name][0] for name in ("up", "acceptance", "failover")] == ["not run"] * 3
    assert results["down"][0] == "ok" and run.provider.downs == 1 and not run.passed
    assert "FAILED" in run.table().splitlines()[-1]


def test_ctrl_c_in_a_stage_still_destroys_the_lab_and_writes_the_table(run, monkeypatch):
    def interrupted() -> tuple[str, str]:
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "_up", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run.run()
    results = {s.name: (s.result, s.note) for s in run.stages}
    assert results["up"] == ("FAILED", "interrupted") and results["down"][0] == "ok"
    assert run.provider.downs == 1
    assert "interrupted" in (run.provider.paths.pipeline / "stages.txt").read_text()
