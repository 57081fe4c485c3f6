"""invoke entry point: it only assembles collections; each lives in halab/tasks/.

invoke --list              every task
invoke --help lab.render   one task's options
"""

from invoke import Collection

from halab.tasks import ami, build, demo, fault, image, lab, test

ns = Collection(ami, build, fault, image, lab, test)
ns.add_task(demo.demo)
