"""Every environment variable the project reads: read here only, and checked as it is read.

An environment variable is input, as a lab file is, and it travels as far: HALAB_HOME is
written into each local guest's node.env (which the guest sources as shell), the lab's
ssh_config (a ProxyCommand), the guests' kernel command line and hostfs mount options;
HALAB_LAUNCHER into commands printed for pasting. So each variable has a strict form, and
a value outside it ends the task with one line naming the variable, its value and what is
allowed, before the value reaches any of those files.

An empty value counts as unset, as `VAR= invoke ...` is how a shell unsets one for a
command; except HALAB_HOME, where an empty value is an unset variable expanded by mistake
(`HALAB_HOME=$HOME_DIR`), and would put the state in the current directory.

What the project only passes on (AWS credentials to boto3, Packer's PKR_VAR_ secrets, whose
presence alone image.plan reports) and what it sets for its own children (the Vagrantfile's
HALAB_LAB_JSON, the guests' HALAB_NODE_DIR, the build scripts' HALAB_PLAN) is not read here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from halab.errors import UsageError

HOME = "HALAB_HOME"  # the state directory (halab.paths.home)
LAUNCHER = "HALAB_LAUNCHER"  # how the user runs the tasks, as hints print it (./bootstrap sets it)
TIMINGS = "HALAB_TIMINGS"  # a file the suite and test.all append each tier's time to (CI's budget table)
KEEP_LABS = "HALAB_KEEP_LABS"  # 1: the suite's labs stay up after it, for debugging
ACCELERATOR = "HALAB_ACCELERATOR"  # QEMU's accelerator, over the probe's answer (halab.accelerator)
VAGRANT_PROVIDER = "HALAB_VAGRANT_PROVIDER"  # the hypervisor Vagrant drives, over the default

ACCELERATORS = ("kvm", "tcg")
HYPERVISORS = ("libvirt", "virtualbox")
FLAG = ("0", "1")

# A version number as pins.yaml, a lab file and HALAB_<NAME>_VERSION write it: 2.2.7.
VERSION = re.compile(r"[0-9]{1,4}(?:\.[0-9]{1,4}){1,3}")
VERSION_RULE = "a version number like 2.2.7"

# The characters of a path any consumer reads as plain: not sh (blank, quote, `$`, `;`...),
# not ssh_config (which expands `%`), not hostfs's mount options (`,` separates them), not
# the guest kernel's command line (blank, `=`), and no line end anywhere.
_PATH_PART = r"[A-Za-z0-9._+-]+"
_HOME = re.compile(rf"(?:/{_PATH_PART})+")
_FILE = re.compile(rf"/?(?:{_PATH_PART}/)*{_PATH_PART}")
_COMMAND = re.compile(rf"{_FILE.pattern}(?: {_FILE.pattern})*")
# Longer than any real path, far below PATH_MAX (4096) less what the project adds below it.
MAX_PATH = 1024
PATH_CHARACTERS = "A-Z a-z 0-9 . _ + - between single slashes"


def version_variable(name: str) -> str:
    """The variable that overrides a lab file's version of `name` on one host."""
    return f"HALAB_{name.upper()}_VERSION"


def home(checkout_labs: Path) -> Path | None:
    """$HALAB_HOME, or None when unset (halab.paths has the default). It must be an absolute,
    normalised path of plain characters (see the module), whose labs/ is not the checkout's
    lab files (`checkout_labs`) or inside them: a relative one, or the checkout itself, would
    put every lab's state, keepalived.conf with its auth_pass included, among labs/*.yaml."""
    value = os.environ.get(HOME)
    if value is None:
        return None
    should = f"an absolute, normalised path of {PATH_CHARACTERS} (no . or .. part, no trailing /)"
    if not value:
        raise _refused(HOME, value, f"unset it for the default (.halab in the checkout), or give {should}")
    if len(value) > MAX_PATH or not _HOME.fullmatch(value) or os.path.normpath(value) != value:
        raise _refused(HOME, value, f"{should}, at most {MAX_PATH} characters")
    state_labs = Path(value).resolve() / "labs"
    if state_labs.is_relative_to(checkout_labs.resolve()):
        raise _refused(HOME, value, f"a directory whose labs/ is not inside the checkout's {checkout_labs}")
    return Path(value)


def version(name: str) -> str:
    """$HALAB_<NAME>_VERSION, or "" when unset: this host's choice over the lab file's version."""
    return _matching(version_variable(name), VERSION, VERSION_RULE)


def launcher() -> str:
    """$HALAB_LAUNCHER, else `invoke`: the command the hints tell the user to run."""
    rule = f"a command: words of {PATH_CHARACTERS}, one space apart, at most 200 characters"
    return _matching(LAUNCHER, _COMMAND, rule, longest=200) or "invoke"


def timings() -> Path | None:
    """$HALAB_TIMINGS, or None when unset: the file each tier's time is appended to."""
    rule = f"a file's path of {PATH_CHARACTERS}, at most {MAX_PATH} characters"
    value = _matching(TIMINGS, _FILE, rule, longest=MAX_PATH)
    return Path(value) if value else None


def keep_labs() -> bool:
    """$HALAB_KEEP_LABS is 1: keep the labs the suite booted."""
    return _one_of(KEEP_LABS, FLAG) == "1"


def accelerator() -> str:
    """$HALAB_ACCELERATOR (kvm or tcg), or "" when unset: the probe decides."""
    return _one_of(ACCELERATOR, ACCELERATORS)


def vagrant_provider() -> str:
    """$HALAB_VAGRANT_PROVIDER (libvirt or virtualbox), or "" when unset: the default applies."""
    return _one_of(VAGRANT_PROVIDER, HYPERVISORS)


def _one_of(variable: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(variable, "")
    if value and value not in choices:
        raise _refused(variable, value, f"one of {', '.join(choices)}, or unset")
    return value


def _matching(variable: str, pattern: re.Pattern[str], rule: str, longest: int = 40) -> str:
    value = os.environ.get(variable, "")
    if value and (len(value) > longest or not pattern.fullmatch(value)):
        raise _refused(variable, value, rule)
    return value


def _refused(variable: str, value: str, allowed: str) -> UsageError:
    """One line, whatever the value holds: repr escapes line ends, and a long value is cut."""
    shown = repr(value) if len(value) <= 80 else f"{value[:80]!r}... ({len(value)} characters)"
    return UsageError(f"{variable}={shown} is not allowed; allowed: {allowed}")
