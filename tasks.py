"""invoke entry point: it only assembles collections; each lives in halab/tasks/.

invoke --list              every task
invoke --help lab.render   one task's options
"""

import signal

from invoke import Collection

from halab.tasks import ami, build, demo, fault, image, lab, test


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# `invoke lab.status --all | head`: end quietly when the reader goes away, as a shell tool does.
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
# Ctrl-C, `timeout --signal=INT` and a CI job's cancel (SIGTERM) stop a task the same way, as
# KeyboardInterrupt, so that lab.up or test.pipeline tears down what it started. A shell
# starts background jobs with SIGINT ignored and Python keeps an inherited SIG_IGN: restore it.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, _interrupt)

ns = Collection(ami, build, fault, image, lab, test)
ns.add_task(demo.demo)
