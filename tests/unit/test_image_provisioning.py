"""What runs inside the build VM, without one: the shell provisioner's command line as Packer
renders it, the check that provision/image.sh ran to its end, and RHEL's registration with
fakes of subscription-manager and its D-Bus service (RHEL itself cannot be booted here)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from halab import paths

# Passwords a user may well have, and ones that would be code to a shell that parsed them.
HOSTILE = [
    "two words",
    "semi;colon; touch PWNED",
    "$(touch PWNED)",
    "`touch PWNED`",
    "it's ${HOME} & $$",
    "quote' ; touch PWNED ; '",
    'double" quote',
    "new\nline",
]


def shell_provisioners() -> list[str]:
    """The text of each `provisioner "shell"` block of build.pkr.hcl, in order."""
    text = (paths.PACKER / "build.pkr.hcl").read_text()
    chunks = re.split(r'\n\s*provisioner "', text.split("post-processors", 1)[0])[1:]
    return [chunk for chunk in chunks if chunk.startswith('shell"')]


def strings(block: str, attribute: str) -> list[str]:
    """The HCL string literal(s) of `attribute = "..."` or `attribute = ["...", ...]` in block."""
    match = re.search(rf"^\s*{attribute}\s*=\s*(\[?)", block, re.MULTILINE)
    if not match:
        return []
    literal = re.compile(r'\s*,?\s*"((?:[^"\\]|\\.)*)"')
    values, at = [], match.end()
    while found := literal.match(block, at):
        values.append(re.sub(r"\\(.)", r"\1", found[1]))
        at = found.end()
        if not match[1]:
            break
    return values


def runs_image_sh(block: str) -> bool:
    return any(re.match(r"sh\s+'?\S*/image\.sh\b", line) for line in strings(block, "inline"))


def packer_vars(variables: dict[str, str], env_var_file: bool) -> str:
    """Packer's rendering of environment_vars (its shell provisioner, escapeEnvVars and
    EnvVarFormat): sorted, each value single-quoted with ' written as '"'"'."""
    form = "export {}='{}'\n" if env_var_file else "{}='{}' "
    return "".join(form.format(k, v.replace("'", "'\"'\"'")) for k, v in sorted(variables.items()))


def fake(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)


@pytest.mark.parametrize("password", HOSTILE)
def test_the_rhsm_password_reaches_image_sh_intact_and_no_shell_runs_it(tmp_path, password):
    """The old execute_command put Packer's already-quoted {{ .Vars }} inside sh -c '...',
    which unquoted them: `two words` ran no provisioning at all and exited 0 (an empty image
    recorded under a clean input hash), `;` ran code, `$` expanded."""
    (provision,) = [block for block in shell_provisioners() if runs_image_sh(block)]
    (template,) = strings(provision, "execute_command")
    uses_file = re.search(r"^\s*use_env_var_file\s*=\s*true", provision, re.MULTILINE) is not None
    variables = {"PACKER_BUILD_NAME": "rocky", "PACKER_BUILDER_TYPE": "qemu"}
    for item in strings(provision, "environment_vars"):
        name, _, value = item.partition("=")
        variables[name] = {"${var.rhsm_username}": "someone", "${var.rhsm_password}": password}[value]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake(bin_dir, "sudo", 'while [ "${1#-}" != "$1" ]; do shift; done; exec "$@"\n')
    script = tmp_path / "script_1234.sh"
    script.write_text(f"#!/bin/sh -e\nenv -0 > {tmp_path}/seen\n")
    env_file = tmp_path / "varfile_5678.sh"
    env_file.write_text(packer_vars(variables, env_var_file=True))
    command = (
        template.replace("{{ .Path }}", str(script))
        .replace("{{ .EnvVarFile }}", str(env_file))
        .replace("{{ .Vars }}", packer_vars(variables, env_var_file=uses_file))
    )
    result = subprocess.run(
        ["sh", "-c", command],  # what Packer's ssh communicator hands the guest's login shell
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "seen").exists(), "the provisioning script never ran"
    seen = dict(item.split("=", 1) for item in (tmp_path / "seen").read_text().split("\0") if "=" in item)
    assert seen["RHSM_PASSWORD"] == password and seen["RHSM_USERNAME"] == "someone"
    assert not (tmp_path / "PWNED").exists()


def test_the_bake_fails_unless_image_sh_ran_to_its_end(tmp_path):
    """A provisioning that did not run must not end in a manifest entry: the last shell
    provisioner, after image.sh's, fails unless image.sh's very last command left its mark."""
    last = shell_provisioners()[-1]
    assert not runs_image_sh(last) and any(map(runs_image_sh, shell_provisioners()[:-1])), (
        "the check must be a provisioner of its own, after image.sh's"
    )
    lines = [line for line in (paths.PROVISION / "image.sh").read_text().splitlines() if line.strip()]
    mark = re.fullmatch(r": > (\S+)", lines[-1])
    assert mark, f"image.sh does not end by leaving its mark: {lines[-1]!r}"
    check = "\n".join(strings(last, "inline"))
    assert mark[1] in check

    def run(marked: bool) -> subprocess.CompletedProcess:
        stand_in = tmp_path / "provisioned"
        stand_in.unlink(missing_ok=True)
        if marked:
            stand_in.touch()
        return subprocess.run(  # inline_shebang's default: /bin/sh -e
            ["/bin/sh", "-ec", check.replace(mark[1], str(stand_in))], capture_output=True, text=True, timeout=30
        )

    missing = run(marked=False)
    assert missing.returncode != 0 and "image.sh did not run to its end" in missing.stderr
    assert run(marked=True).returncode == 0


FAKE_DBUS = '''
"""A stand-in for dbus-python and subscription-manager's service (com.redhat.RHSM1)."""
import json, os, sys

LOG = os.environ["FAKE_DBUS_LOG"]


def _log(**entry):
    with open(LOG, "a") as out:
        out.write(json.dumps(entry) + "\\n")


class Dictionary(dict):
    def __init__(self, items=(), signature=None, variant_level=0):
        super().__init__(items)


class DBusException(Exception):
    def get_dbus_message(self):
        return str(self)


class _Object:
    def __init__(self, name, path):
        self.name, self.path = name, path

    def __getattr__(self, method):
        def call(*args, dbus_interface=None):
            _log(method=method, path=self.path, interface=dbus_interface, args=list(args), argv=sys.argv)
            return "unix:abstract=/var/run/dbus-fake"
        return call


class SystemBus:
    def get_object(self, name, path):
        return _Object(name, path)


class _Connection:
    def __init__(self, address):
        self.address = address

    def call_blocking(self, name, path, interface, method, signature, args, timeout=None):
        _log(method=method, path=path, interface=interface, signature=signature, args=[
            a if isinstance(a, str) else dict(a) for a in args], argv=sys.argv)
        return "{}"


class connection:
    Connection = _Connection


class exceptions:
    DBusException = DBusException
'''


def registration(tmp_path: Path, password: str, prefix: list[str]) -> tuple[subprocess.CompletedProcess, Path]:
    """image.sh as Packer runs it on RHEL, up to its first build step: fakes of subscription-
    manager, rpm and dbus-python record their arguments; `sh build-keepalived.sh` ends it."""
    bin_dir, site = tmp_path / "bin", tmp_path / "site" / "dbus"
    bin_dir.mkdir()
    site.mkdir(parents=True)
    (site / "__init__.py").write_text(FAKE_DBUS)
    argv_log = tmp_path / "argv"
    record = f'printf "%s\\n" "$0 $*" >> {argv_log}\n'
    fake(bin_dir, "subscription-manager", record)
    fake(bin_dir, "rpm", record + "echo 9\n")
    fake(bin_dir, "sh", record + "exit 97\n")  # image.sh's first build step: stop here
    result = subprocess.run(
        [*prefix, "/bin/sh", str(paths.PROVISION / "image.sh"), "/tmp/k.tar.gz", "/tmp/n.tar.gz"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "PYTHONPATH": str(site.parent),
            "FAKE_DBUS_LOG": str(tmp_path / "dbus"),
            "RHSM_USERNAME": "someone",
            "RHSM_PASSWORD": password,
        },
    )
    return result, argv_log


@pytest.mark.parametrize("password", ["two words", "-p $(touch PWNED) 'quoted'"])
def test_rhel_registration_passes_the_password_over_d_bus_never_as_an_argument(tmp_path, password):
    result, argv_log = registration(tmp_path, password, [])
    assert result.returncode == 97, result.stdout + result.stderr  # registered, then the build began
    calls = [json.loads(line) for line in (tmp_path / "dbus").read_text().splitlines()]
    (register,) = [call for call in calls if call["method"] == "Register"]
    assert register["args"][1:3] == ["someone", password]  # exactly, over the private socket
    assert [call["method"] for call in calls] == ["Start", "Register", "Stop"]
    commands = argv_log.read_text()
    assert "repos --enable codeready-builder-for-rhel-9-x86_64-rpms" in commands
    assert "build-keepalived.sh" in commands and "RHSM" not in commands
    assert password not in commands and all(password not in " ".join(call["argv"]) for call in calls)
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.skipif(not shutil.which("strace"), reason="strace records every process's argv")
def test_no_process_of_the_registration_has_the_password_in_its_argv(tmp_path):
    """Every execve of image.sh's registration, not only the fakes': `ps` shows argv to any user."""
    password = "hunter2 with spaces"
    trace = tmp_path / "trace"
    result, _ = registration(
        tmp_path, password, ["strace", "-f", "-qq", "-s", "65536", "-e", "trace=execve", "-o", str(trace)]
    )
    assert result.returncode == 97, result.stdout + result.stderr
    execs = [line for line in trace.read_text().splitlines() if "execve(" in line]
    assert not [line for line in execs if "hunter2" in line]
    assert any("subscription-manager" in line for line in execs) and any("python" in line for line in execs)
