"""Every option of every task, given hostile values: one line naming the value and what is
allowed, a usage error's exit code, no traceback, nothing made outside the state directory.

The options come from the invoke collection itself, so an option added later is driven
too. Each run goes through invoke's own Program, in this process (a subprocess per case
would take minutes), with the AWS API stubbed by moto and every subprocess refused: a
value must be refused before any work starts, so a task that gets as far as starting a
program or calling AWS with one fails here instead of doing it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import invoke
import pytest
from moto import mock_aws

from halab import paths
from tasks import ns
from tests.fixtures import invoke_bare

# The kinds of hostile value: the issue's, plus long text and Unicode's line ends.
KINDS = (
    "non-integer",
    "negative",
    "huge",
    "long",
    "empty",
    "newline",
    "line-separator",
    "traversal",
    "absolute",
    "shell",
)


def hostile(kind: str, outside: Path) -> str:
    """The value of a kind; every path in it points into `outside`, which must stay absent."""
    return {
        "non-integer": "1e9",
        "negative": "-1",
        "huge": "9" * 40,
        "long": "a" * 5000,
        "empty": "",
        "newline": "x\ny",
        "line-separator": "x\u2028y\x85z\udcff",  # Unicode's line ends, a byte that is not UTF-8
        "traversal": "../" * 24 + str(outside / "up").lstrip("/"),
        "absolute": str(outside / "abs"),
        "shell": f"x;touch {outside}/semi;$(touch {outside}/sub)`touch {outside}/tick`",
    }[kind]


# The values other options get while one is driven: required positionals, and the options a
# task needs before it reads the one under test (ami.* need --regions).
BESIDE = {
    "node": "server3",
    "service": "keepalived",
    "regions": "eu-west-1",
    "conf": str(paths.ROOT / "examples" / "write-up" / "keepalived-server3.conf"),
}
# Cases whose accepted value starts work a unit test cannot do, and where that work is tested.
RUNS = {
    "lab.import": "a file name --output takes goes on to run keepalived on the files as root: "
    "tests/config/test_import.py writes labs through the task",
}
# Values some options take as they are, and why: these run and must succeed, writing only
# into the working directory.
TAKEN = {
    ("output", "non-integer"): "a file name in the working directory",
    ("output", "negative"): "a file name in the working directory",
    ("output", "huge"): "a file name in the working directory",
}
# Free-text options, driven only with the kinds every option refuses; why, and where the rest is covered.
FREE = {
    "args": "pytest's own arguments: any words are allowed (pytest judges them); "
    "test_args_reach_pytest_as_words_no_shell_reads checks a shell never sees them, and "
    "the table drives the line ends, which every option refuses",
}
# The kinds no option takes, free text included.
EVERY_OPTION_REFUSES = ("newline", "line-separator")
# Words a refusal uses to say what is allowed.
ALLOWED = ("allowed", "known", "nodes:", "whole", "one of", "takes", "needs", "is not", "not a", "no such", "e.g.")


def cases() -> list[object]:
    found = []
    for name in ns.task_names:
        for argument in ns[name].get_arguments():
            option = argument.names[0]
            if argument.kind is bool:
                continue  # a flag takes no value
            for kind in KINDS:
                if kind == "empty" and argument.default == "":
                    continue  # an empty value is the option's default: not given
                if option in FREE and kind not in EVERY_OPTION_REFUSES:
                    continue
                marks = [pytest.mark.skip(reason=RUNS[name])] if (option, kind) in TAKEN and name in RUNS else []
                found.append(pytest.param(name, option, kind, id=f"{name}--{option}-{kind}", marks=marks))
    return found


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A private state directory, a working directory, a directory that must stay absent;
    no subprocess and no AWS account reachable."""
    where = {"home": tmp_path / "home", "work": tmp_path / "work", "outside": tmp_path / "outside"}
    where["work"].mkdir()
    monkeypatch.setenv("HALAB_HOME", str(where["home"]))
    monkeypatch.chdir(where["work"])

    def refused(self: subprocess.Popen, args: object, *rest: object, **kwargs: object) -> None:
        raise AssertionError(f"a hostile value was not refused before work started: it ran {args!r}")

    monkeypatch.setattr(subprocess.Popen, "__init__", refused)
    with mock_aws():
        yield where


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`invoke ARGV` in this process: its exit code, stdout and stderr."""
    try:
        invoke.Program(namespace=ns, binary="invoke").run(["invoke", *argv])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(("task", "option", "kind"), cases())
def test_every_option_refuses_hostile_values_in_one_line(task, option, kind, place, capsys):
    value = hostile(kind, place["outside"])
    options = {o: v for o, v in BESIDE.items() if o != option and o in _options(task)}
    argv = [task, *(f"--{o}={v}" for o, v in options.items()), f"--{option}={value}"]
    code, out, err = run(argv, capsys)
    assert not place["outside"].exists(), f"{argv!r} made {sorted(place['outside'].rglob('*'))}"
    if (option, kind) in TAKEN:
        assert code == 0 and (place["work"] / value).is_file(), err
        return
    assert not any(place["work"].iterdir()), f"{argv!r} wrote into the working directory"
    lines = err.rstrip("\n").split("\n")
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, f"exit {code}, stderr {err!r}, stdout {out!r}"
    named = (f"--{option}", "''") if kind == "empty" else (repr(value)[1:-1][:12],)
    assert any(name in lines[0] for name in named), f"{lines[0]!r} does not name {named[0]!r}"
    assert any(word in lines[0] for word in ALLOWED), f"{lines[0]!r} does not say what is allowed"


def _options(task: str) -> set[str]:
    return {argument.names[0] for argument in ns[task].get_arguments()}


def test_the_table_drives_every_option_that_takes_a_value():
    """A new option is in the table by itself; the table's exceptions name real options."""
    driven = {(task, option) for task, option, _ in (case.values for case in cases())}
    valued = {(t, a.names[0]) for t in ns.task_names for a in ns[t].get_arguments() if a.kind is not bool}
    assert driven == valued
    assert {option for option, _ in TAKEN} | set(FREE) | set(BESIDE) <= {option for _, option in valued}
    assert len(cases()) > 400


def test_args_reach_pytest_as_words_no_shell_reads(tmp_path):
    """--args was pasted into a shell line: `;` and `$(...)` in it ran. Now they are words."""
    marker = tmp_path / "ran"
    result = invoke_bare("test.unit", "--args", f"--collect-only -q x;touch {marker}", home=tmp_path / "home")
    assert not marker.exists()
    assert result.returncode != 0 and "file or directory not found: x;touch" in result.stdout + result.stderr


def test_args_with_an_unclosed_quote_are_refused_before_the_linters_run(tmp_path):
    result = invoke_bare("test.all", "--args", "-k 'render", home=tmp_path)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        '--args "-k \'render": No closing quotation; quote as a shell would, e.g. --args "-k \'a or b\'"'
    ]
    assert "ruff" not in result.stdout
