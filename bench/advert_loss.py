"""Benchmark (not a test): spurious VRRP takeovers per minute against advert loss, measured and predicted.

On the seed lab, renamed <prefix>loss (bench-loss), on this host with warm builds: boot it,
then for each loss rate put that much netem loss on the MASTER's VRRP adverts
(halab.providers.netfaults, `advert-loss`) for --seconds, while an agent on each director
records the VIP and the adverts it hears: a takeover is a run of the BACKUP's adverts, however
brief (the MASTER answers the first at once); heal, check nothing is left, next rate; tear down.
The BACKUP takes over once its master-down timer (3 x advert_int + skew) passes without an
advert, so k = floor(down / advert_int) adverts lost in a row make a takeover, and under
independent loss p the protocol predicts 60 / advert_int x (1 - p) x p^k takeovers a minute
(halab.prove.split.predicted_per_minute). The table prints both, and the curve goes to a PNG.

    .venv/bin/python bench/advert_loss.py [--rates 20,35,50,65,80] [--seconds 120]
    .venv/bin/python bench/advert_loss.py --quick     # one rate (50 %) for 20 s: what CI runs
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from halab import build, paths, render, spec
from halab.errors import HalabError
from halab.prove import bounds, probe, split
from halab.providers.faults import Fault
from halab.providers.local.provider import LocalProvider
from halab.spec import Lab

QUICK = ([50.0], 20.0)


def bench_lab(prefix: str) -> Lab:
    """The seed lab under its benchmark name, held to the lab-name rule."""
    name = f"{prefix}loss"
    if not paths.NAME.fullmatch(name):
        raise SystemExit(f"--prefix {prefix!r} makes the lab name {name!r}; allowed: {paths.NAME_RULE}")
    return spec.load(paths.DEFAULT_LAB).model_copy(update={"name": name})


def takeovers(provider: LocalProvider, master: str, backup: str, loss: float, seconds: float) -> tuple[int, int]:
    """While master lost `loss` % of its adverts for seconds: how many times backup took over,
    by its adverts (heard by master: split.heard_takeovers, each counted however brief), and
    how many of those lasted long enough to be seen holding the VIP (sampled 20 times a
    second). Both directors' watchers hear the other's adverts."""
    vip, nic = str(provider.lab.vips[0]), provider.lab.vrrp.interface
    watches = {
        node: probe.spawn(provider.remote, node, ["vrrp", "--vip", vip, "--iface", nic]) for node in (master, backup)
    }
    fault = Fault("advert-loss", master, seconds=seconds, amount=loss)
    try:
        fault.apply(provider)
    finally:
        fault.heal(provider)
        records = {node: probe.finish(watch, timeout=30) for node, watch in watches.items()}
    left = fault.remains(provider)
    if left:
        raise SystemExit(f"the loss was not healed: {left}")
    vrid = render.vrids(provider.lab, master)[vip]
    heard = [{**r, "node": node} for node, mine in records.items() for r in mine if "vrid" in r]
    held = sum(1 for r in records[backup] if r.get("vip") == vip and r["present"])
    return split.heard_takeovers(heard, vrid, float("-inf"), float("inf")), held


def settle(provider: LocalProvider, master: str, timeout: float = 30) -> None:
    """Until the MASTER alone holds the VIP again (a takeover may still be under way)."""
    vip, deadline = str(provider.lab.vips[0]), time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = [d for d in provider.lab.role("director") if vip in provider.remote.run(d, "ip -4 -o addr show").stdout]
        if held == [master]:
            return
        time.sleep(0.5)
    raise SystemExit(f"the VIP did not settle on {master} within {timeout:g} s")


def plot(rows: list[tuple[float, float, float]], lab: Lab, path: Path) -> Path:
    """Measured points and the predicted curve, takeovers a minute against loss."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    advert, down = lab.vrrp.advert_int, bounds.down(lab).seconds
    figure, axes = pyplot.subplots(figsize=(7, 4.2), dpi=100)
    grid = [i / 100 for i in range(96)]
    axes.plot([g * 100 for g in grid], [split.predicted_per_minute(g, advert, down) for g in grid], label="predicted")
    axes.scatter([r[0] for r in rows], [r[1] for r in rows], color="C3", label="measured", zorder=3)
    axes.set_xlabel("advert loss on the MASTER (%)")
    axes.set_ylabel("spurious takeovers per minute")
    k = split.adverts_in_down(advert, down)
    axes.set_title(f"{lab.name}: advert_int {advert:g} s, master-down {down:.2f} s, k = {k}")
    axes.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, bbox_inches="tight")
    pyplot.close(figure)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="20,35,50,65,80", help="loss rates, percent, comma-separated")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long each rate lasts (default 120)")
    parser.add_argument("--quick", action="store_true", help="one rate (50 %%) for 20 s: checks the benchmark works")
    parser.add_argument("--prefix", default="bench-", help="the lab's name: PREFIX + loss (default bench-)")
    parser.add_argument("--png", type=Path, help="where the curve goes (default: the lab's state directory)")
    args = parser.parse_args()
    try:
        rates, seconds = QUICK if args.quick else ([float(r) for r in args.rates.split(",")], args.seconds)
    except ValueError:
        raise SystemExit(f"--rates: {args.rates!r} is not comma-separated percentages, e.g. 20,50,80") from None
    if not all(0 <= rate < 100 for rate in rates) or seconds <= 0:
        raise SystemExit("--rates must each be 0 to 99 (percent), --seconds above 0")
    os.environ.setdefault("HALAB_NGINX_VERSION", "1.22.1")  # the lab's 1.17.8 is upstream-only
    lab = bench_lab(args.prefix)
    try:
        build.ensure_all(lab.versions.model_dump(), progress=lambda _: None)
    except HalabError as exc:
        raise SystemExit(f"cannot build: {exc}") from None
    provider = LocalProvider(lab, progress=lambda _: None)
    if provider.running():
        raise SystemExit(f"lab {lab.name!r} is already up; the benchmark boots its own: `invoke lab.down` first")
    master, backup = bounds.pair(lab)
    advert, down = lab.vrrp.advert_int, bounds.down(lab).seconds
    print(f"spurious takeovers under advert loss on {lab.name}: {seconds:g} s per rate, advert_int {advert:g} s,")
    print(f"master-down {down:.3f} s, k = {split.adverts_in_down(advert, down)} adverts lost in a row per takeover")
    print("(takeovers counted by the BACKUP's adverts; 'seen': those that lasted a VIP sample or more,")
    print(" since the MASTER answers a takeover's first advert at once and one can end between two samples)")
    print(f"  {'loss %':>7}{'measured/min':>14}{'predicted/min':>15}{'takeovers':>11}{'seen':>6}")
    rows = []
    try:
        provider.up()
        for rate in rates:
            settle(provider, master)
            taken, seen = takeovers(provider, master, backup, rate, seconds)
            measured, predicted = taken * 60 / seconds, split.predicted_per_minute(rate / 100, advert, down)
            rows.append((rate, measured, predicted))
            print(f"  {rate:7g}{measured:14.2f}{predicted:15.2f}{taken:11d}{seen:6d}", flush=True)
    except HalabError as exc:
        raise SystemExit(f"the benchmark failed: {exc}") from None
    finally:
        provider.down()
    png = plot(rows, lab, args.png or paths.LabPaths(lab.name).root / "advert_loss.png")
    print(f"curve: {png}")


if __name__ == "__main__":
    main()
