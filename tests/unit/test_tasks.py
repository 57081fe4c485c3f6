"""Every task ends an expected failure with one clear message and a non-zero exit: no traceback."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from halab import paths
from tests.fixtures import invoke_bare

BROKEN_LAB = paths.ROOT / "tests" / "unit" / "broken" / "two-masters.yaml"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("fault.crash", "nosuchnode"), 2, "lab 'seed' has no node 'nosuchnode'; nodes: server1"),
        (("fault.stop", "server3", "sshd"), 2, "unknown service 'sshd'; known: keepalived, nginx, smtpd"),
        (("fault.cut", "nosuchnode"), 2, "has no node 'nosuchnode'"),
        (("lab.logs", "nosuchnode"), 2, "has no node 'nosuchnode'"),
        (("lab.ssh", "nosuchnode"), 2, "has no node 'nosuchnode'"),
        (("lab.up", "--provider", "docker"), 2, "unknown provider 'docker'; known: local, vagrant"),
        (("lab.down", "--provider", "docker"), 2, "unknown provider 'docker'; known: local, vagrant"),
        (("lab.validate", "--lab", str(BROKEN_LAB)), 2, "exactly one director must have state MASTER"),
        (
            ("lab.validate", "--lab", "/nonexistent.yaml"),
            2,
            "--lab '/nonexistent.yaml': not an existing file; it takes a lab",
        ),
        (("test.failover", "--scenario", "meteor"), 2, "unknown scenario meteor; known: keepalived-stop"),
        (("test.failover", "--destroy", "sometimes"), 2, "--destroy must be one of passing, booted, always, never"),
        (("image.build", "--var", "no-equals-sign", "--dry-run"), 2, "--var takes KEY=VALUE; got 'no-equals-sign'"),
        (("image.build", "--os", "windows-11", "--dry-run"), 2, "unknown OS 'windows-11'; known: rocky-9"),
        # --var sets how and where an image is built, never what it is or what records it
        (("image.build", "--var", "input_hash=0", "--dry-run"), 2, "--var input_hash cannot be set: it decides"),
        (
            ("image.build", "--var", "nginx_version=1.22.1;id", "--dry-run"),
            2,
            "--var may set, for rocky-9 libvirt: cpus",
        ),
        (("image.build", "--var", "cpus=0", "--dry-run"), 2, "--var cpus='0': allowed: a whole number 1..64"),
        # an --os that is a path never becomes one: absolute, or climbing out of packer/vars
        (("image.build", "--os", "/etc/passwd", "--dry-run"), 2, "unknown OS '/etc/passwd'; known: rocky-9"),
        (("image.build", "--os", "../vars/rocky-9", "--dry-run"), 2, "unknown OS '../vars/rocky-9'; known:"),
        (("test.pipeline", "--os", "/abs/path"), 2, "unknown OS '/abs/path'; known:"),
        (("image.base", "--os", "/abs/path"), 2, "unknown OS '/abs/path'; known:"),
        (("test.pipeline", "--lab", ""), 2, "--lab '': not an existing file; it takes a lab file"),
        (("ami.publish", "--regions", "eu-west-1", "--kms-key", "alias/x"), 2, "--kms-key takes REGION=KEY"),
        (("ami.publish", "--regions", "eu-west-1"), 1, "no Packer manifest at"),
        (("ami.list",), 2, "--regions is required"),
        # the copy's key for a region not published to was silently dropped
        (
            ("ami.publish", "-r", "eu-west-1", "--kms-key", "us-east-1=alias/ami"),
            2,
            "'us-east-1': not one of --regions",
        ),
        (("ami.publish", "-r", "eu-west-1,eu-west-1"), 2, "--regions names eu-west-1 more than once"),
        (
            ("ami.publish", "-r", "eu-west-1", "--share", "all"),
            2,
            "--share: 'all' is not an AWS account id (12 digits)",
        ),
        (
            ("ami.publish", "-r", "eu-west-1", "--kms-key", "eu-west-1=a", "--kms-key", "eu-west-1=b"),
            2,
            "more than once",
        ),
        (("ami.list", "-r", "eu-west-1", "--manifest", ""), 2, "--manifest '': not an existing file"),
        (("lab.inventory", "--output", "/nonexistent/x.ini"), 2, "not a file name in an existing directory"),
        (("ami.prune", "--regions", "eu-west-1", "--retain=-1"), 2, "--retain takes a whole number from 0 to 1000"),
        # an integer option given something else: invoke's own int() ended in a traceback
        (("ami.prune", "--regions", "eu-west-1", "--retain", "x"), 2, "--retain takes a whole number from 0 to 1000"),
        (("lab.logs", "server3", "--lines", "1e9"), 2, "--lines takes a whole number from 1 to 100000; got '1e9'"),
        (("ami.publish", "--regions", "eu-west-1", "--deprecate-days=-5"), 2, "--deprecate-days takes a whole number"),
        # 99999999 days overflowed the deprecation date
        (("ami.publish", "--regions", "eu-west-1", "--deprecate-days", "99999999"), 2, "from 0 to 3650; got"),
        (("demo", "--destroy=pasing"), 2, "--destroy must be one of passing"),
        (("lab.validate", "--lab", ""), 2, "--lab needs a lab file"),
        (("lab.inventory", "--format", "toml"), 2, "--format must be one of ini, yaml; got 'toml'"),
        (("lab.show", "--format", "jpeg"), 2, "--format must be one of text, png, svg, dot; got 'jpeg'"),
        (("fault.stop", "server1", "keepalived"), 2, "server1 is a realserver: it runs nginx, not keepalived"),
        (("fault.crash", "client"), 1, "lab 'seed' is not up on this host: `invoke lab.up` first"),
        (("fault.cut", "server3"), 1, "lab 'seed' is not up on this host"),
        (("lab.ssh", "server3"), 1, "lab 'seed' is not up on this host"),
        (("lab.down", "--name", ""), 2, "'' is not a lab name"),
        (("lab.down", "--lab", str(BROKEN_LAB)), 2, "`invoke lab.down --name NAME`"),
    ],
)
def test_bad_arguments_end_in_one_clear_message(tmp_path, args, code, message):
    result = invoke_bare(*args, home=tmp_path)
    assert result.returncode == code, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_lab_down_of_a_lab_that_is_not_there_says_so_and_succeeds(tmp_path):
    result = invoke_bare("lab.down", "--name", "nosuchlab", home=tmp_path)
    assert result.returncode == 0 and "lab 'nosuchlab' is down (nothing of it was on this host)" in result.stdout


@pytest.mark.parametrize("name", ["../../../../tmp/x", "/etc", "seed/../../x", "UPPER", "a" * 300, "x\ny"])
def test_a_lab_name_never_becomes_a_path_outside_the_state_directory(tmp_path, name):
    victim = tmp_path / "x" / "uml"
    victim.mkdir(parents=True)
    result = invoke_bare("lab.down", "--name", name, home=tmp_path / "home")
    refused = "is not a lab name" in result.stderr or "no line ends" in result.stderr
    assert result.returncode == 2 and refused and "Traceback" not in result.stderr
    assert victim.exists() and not (tmp_path / "home").exists()
    assert len(result.stderr) < 300


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not a readable Packer manifest"),
        ("[1, 2]", "is not a Packer manifest"),
        ('{"builds": [{"builder_type": "amazon-ebs", "artifact_id": "ami-123"}]}', "is not REGION:ami-ID"),
        ('{"builds": [{"builder_type": "amazon-ebs", "artifact_id": 7, "custom_data": []}]}', "is not REGION:ami-ID"),
    ],
)
def test_a_broken_manifest_is_named_not_a_traceback(tmp_path, text, message):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(text)
    result = invoke_bare(
        "ami.publish", "--regions", "eu-west-1", "--manifest", str(manifest), "--dry-run", home=tmp_path
    )
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_every_task_says_what_it_does_in_one_whole_first_line():
    """`invoke --list` shows each docstring's first line: it must be a whole sentence."""
    from tasks import ns

    for name in ns.task_names:
        first = (ns[name].__doc__ or "").strip().splitlines()[0]
        assert first.endswith("."), f"{name}: {first!r} is cut off in `invoke --list`"
        assert len(first) <= 100, f"{name}: {first!r} is longer than a --list line"


def test_a_short_flag_means_one_option_in_every_task():
    """Every task's short flags come from the one table (never from invoke's first free
    letter), each letter names one option, and every entry of the table is used."""
    from halab.tasks import SHORT_FLAGS
    from tasks import ns

    used = set()
    for name in ns.task_names:
        for argument in ns[name].get_arguments():
            option, *short = argument.names
            assert short == ([SHORT_FLAGS[option]] if option in SHORT_FLAGS else []), (name, argument.names)
            used.add(option)
    assert len(set(SHORT_FLAGS.values())) == len(SHORT_FLAGS)
    assert set(SHORT_FLAGS) <= used, set(SHORT_FLAGS) - used


def test_short_flags_work_on_the_command_line(tmp_path):
    result = invoke_bare("lab.show", "-l", "labs/dual.yaml", "-f", "dot", home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "labs" / "dual" / "artifacts" / "topology.dot").read_text().startswith('digraph "dual"')


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_task_is_interruptible_even_when_started_with_sigint_ignored(signum):
    """A shell's background job inherits SIGINT ignored; `timeout --signal=INT` and a CI cancel
    (SIGTERM) must still reach the task as KeyboardInterrupt, the path that tears the lab down."""
    script = (
        "import os, signal, sys; sys.path.insert(0, sys.argv[1]); import tasks; "
        "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n"
        f"try: os.kill(os.getpid(), {int(signum)}); signal.pause()\n"
        "except KeyboardInterrupt: print('interrupted')"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(paths.ROOT)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert result.stdout.split() == ["True", "interrupted"], result.stderr


def test_list_scenarios_shows_bounds_and_what_each_lab_expects_of_established_connections(tmp_path):
    fast = invoke_bare("test.failover", "--lab", str(paths.LABS / "fast.yaml"), "--list-scenarios", home=tmp_path)
    assert fast.returncode == 0, fast.stdout + fast.stderr
    assert "crash server3: bound 361 ms (3 x advert_int 0.1 + skew 0.061 s)" in fast.stdout
    assert "established connections kept (lvs_sync_daemon), stall bound 923 ms" in fast.stdout
    assert "idle: no fault for 60 s" in fast.stdout and "(on request: --scenario idle)" in fast.stdout
    seed = invoke_bare("test.failover", "--list-scenarios", home=tmp_path)
    assert "established connections lost (no lvs_sync_daemon" in seed.stdout, seed.stdout + seed.stderr
    # every scenario, with its bound: those that run only when named say how to name them
    for name in ("director-partition", "garp-lost", "advert-loss", "realserver-hang", "director-pause"):
        assert f"(on request: --scenario {name})" in seed.stdout, seed.stdout
    assert "keepalived-stop: keepalived stopped cleanly on the MASTER server3, then started\n" in seed.stdout
