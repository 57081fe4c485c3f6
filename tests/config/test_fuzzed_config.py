"""Mutated labs that validate pass the daemons' own config tests, as the shipped ones do.

The unit fuzz test checks rendered files against the templates' structure; this checks a
smaller, fixed sample of the same mutated labs against keepalived -t and nginx -t, which
know keepalived's limits (ranges, warnings) better than any structural check.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from halab import configtest, render, spec
from halab.errors import SpecError
from tests.fixtures import needs_root
from tests.mutations import CASES, LABS, SEEDS, mutated_lab_text

SAMPLE = 12

pytestmark = needs_root("keepalived -t and nginx -t run in private namespaces (unshare)")


@pytest.fixture(scope="module")
def fuzzed_valid_labs() -> list[spec.Lab]:
    """The first SAMPLE distinct valid labs of a derandomized run of the unit test's mutations,
    leaving out those equal to a shipped lab (test_daemon_config checks those)."""
    shipped = {spec.load(path).model_dump_json() for path in LABS}
    found: dict[str, spec.Lab] = {}

    @settings(
        max_examples=CASES, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(SEEDS)
    def collect(seed: int) -> None:
        try:
            lab = spec.parse(mutated_lab_text(seed))
        except SpecError:
            return
        if len(found) < SAMPLE and lab.model_dump_json() not in shipped:
            found.setdefault(lab.model_dump_json(), lab)

    with pytest.MonkeyPatch.context() as patch:
        for name in ("HALAB_KEEPALIVED_VERSION", "HALAB_NGINX_VERSION"):
            patch.delenv(name, raising=False)
        collect()
    assert len(found) == SAMPLE
    return list(found.values())


def test_fuzzed_valid_labs_pass_keepalived_t_and_nginx_t(fuzzed_valid_labs, builds, tmp_path):
    for index, lab in enumerate(fuzzed_valid_labs):
        written = render.write(render.render(lab), tmp_path / str(index))
        for conf in written:
            if conf.name == "keepalived.conf":
                verdict = configtest.keepalived(conf, builds["keepalived"].binary, configtest.interfaces(lab))
            elif conf.name == "nginx.conf":
                verdict = configtest.nginx(conf, builds["nginx"].binary)
            else:
                continue
            assert verdict.ok, f"lab {index} ({lab.model_dump_json()}): {conf}: {verdict.output}"
