"""The image pipeline without a hypervisor: input hash, the exact packer command, skipping
what exists, box metadata; and `packer validate` of every OS x target (offline)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from halab import paths
from halab.errors import UsageError
from halab.images import packer

VERSIONS = {"keepalived": "2.2.7", "nginx": "1.22.1"}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A copy of packer/ and provision/ that a test may change."""
    for name in ("packer", "provision"):
        shutil.copytree(paths.ROOT / name, tmp_path / name)
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    monkeypatch.setattr(paths, "PACKER", tmp_path / "packer")
    monkeypatch.setattr(paths, "PROVISION", tmp_path / "provision")
    return tmp_path


def test_input_hash_is_stable_and_changes_with_each_input(project):
    first = packer.input_hash("rocky-9", VERSIONS)
    assert first == packer.input_hash("rocky-9", VERSIONS)
    assert first != packer.input_hash("rocky-9", {**VERSIONS, "nginx": "1.17.10"})  # a pin
    assert first != packer.input_hash("rocky-8", VERSIONS)  # the OS vars
    script = project / "provision" / "build-nginx.sh"
    script.write_text(script.read_text() + "\n# changed\n")
    second = packer.input_hash("rocky-9", VERSIONS)
    assert second != first  # a provision script
    template = project / "packer" / "build.pkr.hcl"
    template.write_text(template.read_text() + "\n")
    third = packer.input_hash("rocky-9", VERSIONS)
    assert third != second  # a template
    (project / "packer" / "README.md").write_text("docs only\n")
    assert packer.input_hash("rocky-9", VERSIONS) == third  # not the docs


def test_secrets_never_reach_the_command_line(monkeypatch):
    with pytest.raises(UsageError, match="set PKR_VAR_rhsm_password in the environment instead"):
        packer.Plan("rhel-9", "libvirt", VERSIONS, {"rhsm_password": "hunter2"})
    monkeypatch.setenv("PKR_VAR_rhsm_password", "hunter2")
    plan = packer.Plan("rhel-9", "libvirt", VERSIONS)
    assert plan.secrets() == {"PKR_VAR_rhsm_username": False, "PKR_VAR_rhsm_password": True}
    assert "hunter2" not in " ".join(plan.command()) and "rhsm" not in plan.shell()
    assert packer.Plan("rocky-9", "libvirt", VERSIONS).secrets() == {}


def test_the_dry_run_command_names_everything():
    plan = packer.Plan("rhel-9", "virtualbox", VERSIONS, {"iso_url": "/isos/rhel.iso"})
    argv = plan.command()
    assert argv[:5] == [
        "packer",
        "build",
        "-force",
        "-only=virtualbox-iso.rocky",
        f"-var-file={paths.PACKER}/vars/rhel-9.pkrvars.hcl",
    ]
    assert argv[-1] == str(paths.PACKER)
    variables = dict(argv[i + 1].split("=", 1) for i, arg in enumerate(argv) if arg == "-var")
    assert variables["keepalived_version"] == "2.2.7" and variables["nginx_version"] == "1.22.1"
    assert variables["input_hash"] == plan.input_hash and variables["iso_url"] == "/isos/rhel.iso"
    assert len(variables["nginx_sha256"]) == 64 and variables["nginx_tarball"].endswith("nginx-1.22.1.tar.gz")


def test_unknown_os_and_target_name_the_known_ones():
    with pytest.raises(packer.UsageError, match="known: rocky-9, rocky-8, rhel-9, rhel-8"):
        packer.Plan("centos-7", "libvirt", VERSIONS)
    with pytest.raises(packer.UsageError, match="known: libvirt, virtualbox, ami"):
        packer.Plan("rocky-9", "hyperv", VERSIONS)


def manifest(tmp_path: Path, plan: packer.Plan, input_hash: str) -> Path:
    box = tmp_path / "halab-rocky-9-libvirt.box"
    box.write_bytes(b"box")
    path = tmp_path / "manifest.json"
    path.write_text(
        json.dumps(
            {
                "builds": [
                    {
                        "name": "rocky",
                        "builder_type": "qemu",
                        "build_time": 1790000000,
                        "artifact_id": "halab-rocky-9",
                        "files": [{"name": str(box), "size": 3}],
                        "custom_data": {
                            "os": "rocky-9",
                            "keepalived_version": "2.2.7",
                            "nginx_version": "1.22.1",
                            "input_hash": input_hash,
                        },
                    }
                ]
            }
        )
    )
    return path


def test_an_image_with_the_same_input_hash_is_found_and_any_other_is_not(tmp_path):
    plan = packer.Plan("rocky-9", "libvirt", VERSIONS)
    assert packer.existing(plan, manifest(tmp_path, plan, plan.input_hash))["artifact_id"] == "halab-rocky-9"
    assert packer.existing(plan, manifest(tmp_path, plan, "0" * 64)) is None
    assert packer.existing(packer.Plan("rocky-9", "ami", VERSIONS), manifest(tmp_path, plan, plan.input_hash)) is None
    (tmp_path / "halab-rocky-9-libvirt.box").unlink()
    assert packer.existing(plan, tmp_path / "manifest.json") is None


def test_box_metadata_is_what_vagrant_box_add_reads(tmp_path):
    plan = packer.Plan("rocky-9", "libvirt", VERSIONS)
    entry = json.loads(manifest(tmp_path, plan, plan.input_hash).read_text())["builds"][0]
    metadata = packer.box_metadata(entry, "halab/rocky-9")
    provider = metadata["versions"][0]["providers"][0]
    assert metadata["name"] == "halab/rocky-9" and provider["name"] == "libvirt"
    assert provider["url"].startswith("file:///") and len(provider["checksum"]) == 64


@pytest.mark.skipif(not shutil.which("packer"), reason="packer is not installed (./bootstrap installs Debian's)")
@pytest.mark.parametrize(("os_name", "target"), [(o, t) for o in packer.oses() for t in packer.targets(o)])
def test_packer_validates_every_os_and_target_offline(os_name, target):
    result = packer.validate(os_name, target, VERSIONS)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not shutil.which("packer"), reason="packer is not installed (./bootstrap installs Debian's)")
def test_validation_passes_after_a_bake_left_its_output_directory(tmp_path, monkeypatch):
    # Found by the first real bake: Packer refuses a build whose output directory exists.
    monkeypatch.setenv("HALAB_HOME", str(tmp_path))
    (paths.images() / "halab-debian-12-libvirt").mkdir(parents=True)
    result = packer.validate("debian-12", "libvirt", VERSIONS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_debian_bakes_from_its_base_image_for_libvirt_only(monkeypatch):
    monkeypatch.delenv("HALAB_ACCELERATOR", raising=False)
    plan = packer.Plan("debian-12", "libvirt", VERSIONS, accelerator="tcg")
    command = plan.command()
    assert "-only=qemu.debian" in command and "accelerator=tcg" in command
    assert command[:3] == ["packer", "build", "-force"]  # stale outputs of an older input hash go
    assert f"iso_url={plan.base_image.path}" in command
    assert any(arg.startswith("ssh_private_key_file=") and arg.endswith("/keys/vagrant") for arg in command)
    assert packer.targets("debian-12") == {"libvirt": "qemu.debian"}
    assert packer.Plan("rocky-9", "libvirt", VERSIONS).source == "qemu.rocky"
    with pytest.raises(packer.UsageError, match="debian-12 is baked for libvirt only"):
        packer.Plan("debian-12", "virtualbox", VERSIONS)


def test_the_debian_input_hash_follows_its_base_image(project, monkeypatch):
    first = packer.input_hash("debian-12", VERSIONS)
    hook = project / "packer" / "base" / "debian.sh"
    hook.write_text(hook.read_text() + "\n# changed\n")
    monkeypatch.setattr(packer.base, "HOOK", hook)
    assert packer.input_hash("debian-12", VERSIONS) != first


def test_a_manifest_entry_without_a_box_is_a_clear_error(tmp_path):
    # Found by the first real bake: with the manifest beside (not after) the vagrant
    # post-processor, the manifest listed the disk image only.
    plan = packer.Plan("rocky-9", "libvirt", VERSIONS)
    entry = json.loads(manifest(tmp_path, plan, plan.input_hash).read_text())["builds"][0]
    entry["files"] = [{"name": str(tmp_path / "halab-rocky-9.qcow2"), "size": 1}]
    with pytest.raises(packer.ImageError, match=r"lists no \.box"):
        packer.box_metadata(entry, "halab/rocky-9")


def test_the_manifest_records_what_the_vagrant_post_processor_made():
    text = (paths.PACKER / "build.pkr.hcl").read_text()
    chain = text[text.index("post-processors {") :]
    assert chain.index('post-processor "vagrant"') < chain.index('post-processor "manifest"')


def test_a_bake_whose_inputs_changed_while_packer_ran_says_so(project, monkeypatch, tmp_path):
    """Found by editing provision/ during a real bake: the manifest then had no build with
    the new hash, and the error blamed Packer's manifest instead of the edit."""
    monkeypatch.setenv("HALAB_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(packer.shutil, "which", lambda _: "/usr/bin/packer")
    monkeypatch.setattr(packer.sources, "fetch", lambda *_, **__: None)
    script = project / "provision" / "image.sh"

    def packer_run(command, **_):
        if command[:2] == ["packer", "build"]:
            script.write_text(script.read_text() + "\n# edited during the bake\n")
        return packer.subprocess.CompletedProcess(command, 0, stdout="", stderr="")

    monkeypatch.setattr(packer.subprocess, "run", packer_run)
    plan = packer.Plan("rocky-9", "libvirt", VERSIONS)
    with pytest.raises(packer.ImageError, match="changed while Packer ran"):
        packer.bake(plan, progress=lambda _: None)


LOCAL_ALLOWED = "cpus, disk_size, headless, iso_checksum, iso_url, memory"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("input_hash", "0" * 64),  # what an image is found and published by
        ("build_inputs", "0" * 64),  # what matches it to the tests that proved it
        ("git_revision", "v1.0"),
        ("keepalived_version", "2.2.7; reboot"),  # reached a root shell line in the build VM
        ("nginx_tarball", "/tmp/other.tar.gz"),
        ("nginx_sha256", "0" * 64),
        ("output_dir", "/tmp/elsewhere"),  # where the manifest that records it lives
        ("os_version", "10"),
        ("ami_owner", "123456789012"),  # the AMI an image starts from
        ("accelerator", "tcg"),  # HALAB_ACCELERATOR's, checked there
    ],
)
def test_var_refuses_what_decides_or_records_the_image(name, value):
    with pytest.raises(UsageError) as refused:
        packer.Plan("rocky-9", "libvirt", VERSIONS, {name: value})
    assert str(refused.value) == (
        f"--var {name} cannot be set: it decides what the image is or records it; "
        f"--var may set, for rocky-9 libvirt: {LOCAL_ALLOWED}"
    )


@pytest.mark.parametrize(
    ("target", "name", "value", "allowed"),
    [
        ("libvirt", "cpus", "0", "a whole number 1..64"),
        ("libvirt", "cpus", "2; reboot", "a whole number 1..64"),
        ("libvirt", "memory", "1e9", "a whole number 512..262144 (MiB)"),
        ("libvirt", "disk_size", "-1", "a whole number 2048..2097152 (MiB)"),
        ("libvirt", "headless", "yes", "true or false"),
        ("libvirt", "iso_url", "https://mirror.example/a b.iso", "an http(s) URL"),
        ("libvirt", "iso_url", "/isos/$(reboot).iso", "an http(s) URL"),
        ("libvirt", "iso_url", "git::https://example.com/repo", "an http(s) URL"),
        ("libvirt", "iso_url", "https://example.com/x.iso?archive=zip", "an http(s) URL"),
        ("libvirt", "iso_checksum", "none", "sha256:<64 hex digits>"),
        ("libvirt", "iso_checksum", "sha256:abc", "sha256:<64 hex digits>"),
        ("ami", "aws_region", "eu-west-1 --debug", "an AWS region like eu-west-1"),
        ("ami", "aws_instance_type", "t3.small'", "an EC2 instance type like t3.small"),
    ],
)
def test_each_variable_var_may_set_has_a_strict_form(target, name, value, allowed):
    with pytest.raises(UsageError) as refused:
        packer.Plan("rocky-9", target, VERSIONS, {name: value})
    assert str(refused.value).startswith(f"--var {name}={value!r}: allowed: {allowed}")


def test_var_sets_the_iso_the_build_vm_and_the_aws_placement_in_their_forms():
    iso = {"iso_url": "/isos/rhel-9.4-x86_64-dvd.iso", "iso_checksum": "sha256:" + "a" * 64}
    vm = {"cpus": "4", "memory": "4096", "disk_size": "40960", "headless": "false"}
    command = packer.Plan("rhel-9", "libvirt", VERSIONS, iso | vm).command()
    assert {f"{k}={v}" for k, v in (iso | vm).items()} <= set(command)
    mirror = {
        "iso_url": "https://mirror.example/rocky/9/Rocky-9.4-x86_64-boot.iso",
        "iso_checksum": "file:https://mirror.example/rocky/9/CHECKSUM",
    }
    assert "iso_url=" + mirror["iso_url"] in packer.Plan("rocky-9", "virtualbox", VERSIONS, mirror).command()
    aws = {"aws_region": "us-gov-west-1", "aws_instance_type": "m7i-flex.large"}
    assert "aws_region=us-gov-west-1" in packer.Plan("rocky-9", "ami", VERSIONS, aws).command()


def test_var_is_per_target_and_debian_starts_from_its_base_image_only():
    with pytest.raises(UsageError, match=r"may set, for rocky-9 ami: aws_instance_type, aws_region$"):
        packer.Plan("rocky-9", "ami", VERSIONS, {"cpus": "4"})
    with pytest.raises(UsageError, match=r"may set, for debian-12 libvirt: cpus, disk_size, headless, memory$"):
        packer.Plan("debian-12", "libvirt", VERSIONS, {"iso_url": "/tmp/other.qcow2"})


def test_an_override_that_changes_the_image_changes_its_input_hash():
    def digest(**overrides: str) -> str:
        return packer.Plan("rhel-9", "libvirt", VERSIONS, overrides).input_hash

    plain = digest()
    assert len({plain, digest(iso_url="/isos/a.iso"), digest(iso_url="/isos/b.iso")}) == 3
    assert digest(iso_checksum="sha256:" + "a" * 64) != plain and digest(disk_size="40960") != plain
    assert digest(cpus="8", memory="8192", headless="false") == plain  # how fast, not what
