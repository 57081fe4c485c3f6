"""The headline path, run for real and timed: bake an image, boot the lab from it, prove it.

`invoke test.pipeline` runs every stage the README promises, in order: the base disk
image (Debian; cached by its input hash), the Packer bake (skipped when an image with
the same input hash exists), `vagrant box add`, `lab.up --provider vagrant`, the
acceptance suite and the failover scenarios (halab.prove.session: the same suite and
bounds as on the local lab, logs collected), and the lab's destruction, which runs
whatever happened before it. Each stage's time and outcome go into a table, printed and
written beside the run's other reports, so a slow or failing stage is visible at a glance.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from halab import accelerator, durations, paths, providers, spec
from halab.errors import HalabError, ImageError
from halab.images import base, packer
from halab.prove import scenarios, session

Progress = Callable[[str], None]


@dataclass
class Stage:
    """One stage's outcome: ok, skipped (nothing to do), FAILED, or not run (an earlier one failed)."""

    name: str
    result: str = "not run"
    seconds: float = 0.0
    note: str = ""


class Pipeline:
    """One run of the whole path for one OS and lab file."""

    STAGES = ("base", "bake", "box add", "up", "acceptance", "failover", "down")

    def __init__(self, os_name: str, lab_file: Path, progress: Progress = print, quick: bool = False) -> None:
        packer.vars_file(os_name)  # an unknown --os (a path, a typo) is refused before any stage runs
        self.os_name = os_name
        self.quick = quick  # the failover stage runs scenarios.quick: one scenario per fault primitive
        self.lab_file = lab_file
        self.progress = progress
        model = spec.load(str(lab_file))
        self.box_name = f"halab/{os_name}"
        # The lab as the pipeline runs it: on the box this run bakes, whatever the file's default.
        self.provider = providers.make(
            model.model_copy(update={"box": self.box_name}), "vagrant", progress, hypervisor="libvirt"
        )
        self.versions = model.versions.model_dump()
        self.stages = [Stage(name) for name in self.STAGES]
        self.reports: list[Path] = []  # the pages of the acceptance and failover runs, once written

    @property
    def passed(self) -> bool:
        return all(stage.result in ("ok", "skipped") for stage in self.stages)

    def run(self) -> list[Stage]:
        """Every stage in order until one fails; the lab is destroyed in any case."""
        steps: dict[str, Callable[[], tuple[str, str]]] = {
            "base": self._base,
            "bake": self._bake,
            "box add": self._box_add,
            "up": self._up,
            "acceptance": self._acceptance,
            "failover": self._failover,
        }
        try:
            for stage in self.stages[:-1]:
                if not self._timed(stage, steps[stage.name]):
                    break
        finally:
            self._timed(self.stages[-1], self._down)
            self.write()
        return self.stages

    def _timed(self, stage: Stage, step: Callable[[], tuple[str, str]]) -> bool:
        """Run one stage, showing its elapsed time against its last run's on this host."""
        key = f"pipeline {self.os_name} {stage.name}"  # a bake of one OS says nothing of another's
        with durations.Stage(key, f"==> pipeline: {stage.name}", self.progress) as clock:
            try:
                stage.result, stage.note = step()
            except HalabError as exc:
                stage.result, stage.note = "FAILED", str(exc).splitlines()[0]
            except KeyboardInterrupt:
                stage.result, stage.note = "FAILED", "interrupted"
                stage.seconds = clock.elapsed
                raise
            stage.seconds = clock.finished(stage.result, stage.result == "ok", stage.note)
        return stage.result != "FAILED"

    # --- the stages: each returns (result, note) or raises HalabError ----------------------

    def _base(self) -> tuple[str, str]:
        if not packer.from_disk_image(self.os_name):
            return "skipped", f"{self.os_name} installs from its ISO"
        existed = base.plan(self.os_name).path.exists()
        image = base.make(self.os_name, self.progress)
        return ("skipped" if existed else "ok"), f"{image.path.name}"

    def _bake(self) -> tuple[str, str]:
        chosen = accelerator.choose()
        plan = packer.Plan(self.os_name, "libvirt", self.versions, accelerator=chosen.name)
        existed = packer.existing(plan) is not None
        entry = packer.bake(plan, progress=self.progress)
        note = f"input hash {plan.input_hash[:12]}, {chosen.name}"
        return ("skipped", note + ", unchanged") if existed else ("ok", note + f", {entry.get('artifact_id')}")

    def _box_add(self) -> tuple[str, str]:
        metadata_file = paths.box_metadata(self.os_name, "libvirt")
        if not metadata_file.exists():
            raise ImageError(f"{metadata_file} is missing: the bake did not finish")
        version = json.loads(metadata_file.read_text())["versions"][0]["version"]
        listed = _vagrant(["box", "list", "--machine-readable"]).stdout
        if _has_box(listed, self.box_name, version):
            return "skipped", f"{self.box_name} {version} already added"
        _vagrant(["box", "add", "--force", str(metadata_file)], check=True)
        return "ok", f"{self.box_name} {version}"

    def _up(self) -> tuple[str, str]:
        self.provider.up()
        return "ok", f"{len(self.provider.lab.nodes)} VMs, driver {accelerator.choose().libvirt_driver}"

    def _acceptance(self) -> tuple[str, str]:
        passed = session.acceptance(self.provider, destroy="never")
        self.reports.append(self.provider.paths.latest.resolve() / paths.REPORT)
        return ("ok" if passed else "FAILED"), str(self.reports[-1])

    def _failover(self) -> tuple[str, str]:
        lab = self.provider.lab
        chosen = scenarios.quick(lab) if self.quick else [*scenarios.scenarios(lab), *scenarios.on_vms(lab)]
        runs = session.measure(self.provider, chosen, "never", self.progress)
        self.reports.append(self.provider.paths.latest.resolve() / paths.REPORT)
        failed = [run.scenario for run in runs if not run.passed]
        return ("FAILED", "failed: " + ", ".join(failed)) if failed else ("ok", f"{len(runs)} scenarios passed")

    def _down(self) -> tuple[str, str]:
        found = self.provider.footprint(self.provider.paths)
        self.provider.down()
        return "ok", f"removed {found}" if found else "nothing of the lab was left"

    # --- the report -------------------------------------------------------------------------

    def table(self) -> str:
        rows = [("stage", "result", "time", "note"), ("-" * 10, "-" * 7, "-" * 7, "-" * 4)]
        for s in self.stages:
            rows.append((s.name, s.result, durations.clock(s.seconds) if s.result != "not run" else "-", s.note))
        total = sum(s.seconds for s in self.stages)
        rows.append(("total", "passed" if self.passed else "FAILED", durations.clock(total), f"{self.os_name}"))
        return "\n".join(f"{a:<10}  {b:<7}  {c:>7}  {d}" for a, b, c, d in rows)

    def write(self) -> Path:
        out = self.provider.paths.pipeline
        out.mkdir(parents=True, exist_ok=True)
        (out / "stages.txt").write_text(self.table() + "\n")
        record = {"os": self.os_name, "lab": self.provider.lab.name, "passed": self.passed}
        (out / "stages.json").write_text(json.dumps({**record, "stages": [asdict(s) for s in self.stages]}, indent=1))
        return out


def _has_box(listing: str, name: str, version: str) -> bool:
    """`vagrant box list --machine-readable` lists name's version for libvirt."""
    boxes, current = set(), {}
    for line in listing.splitlines():
        fields = line.split(",", 3)
        if len(fields) == 4 and fields[2] in ("box-name", "box-provider", "box-version"):
            current[fields[2]] = fields[3]
            if fields[2] == "box-version":
                boxes.add((current.get("box-name"), current.get("box-provider"), fields[3]))
    return (name, "libvirt", version) in boxes


def _vagrant(args: list[str], check: bool = False) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["vagrant", *args], capture_output=True, text=True, timeout=1800)
    if check and result.returncode != 0:
        raise ImageError(f"vagrant {' '.join(args[:2])} failed: {(result.stderr or result.stdout).strip()[-300:]}")
    return result
