"""invoke entry point: it only assembles collections; each lives in halab/tasks/.

invoke --list              every task
invoke --help lab.render   one task's options
"""

import signal

from invoke import Collection

from halab.tasks import ami, build, demo, fault, image, lab, test

# `invoke lab.status --all | head`: end quietly when the reader goes away, as a shell tool does.
signal.signal(signal.SIGPIPE, signal.SIG_DFL)

ns = Collection(ami, build, fault, image, lab, test)
ns.add_task(demo.demo)
