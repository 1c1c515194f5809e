"""Size and time of the scaling report on the over-training suite (104 runs, 54 metrics).

Targets: an HTML file under 5 MB, built in under 10 s; issue 16: <= 2 s, and <= 5 s with
--decide. Times the whole ``ladder report`` pipeline in stages: reading the table, fitting the
law per recipe (with the bootstrap the CLI uses by default, 100 resamples), building the
sections and figures, rendering the page.

The baseline of the same run is the same build in one process (``--jobs 1``): the machine's
load weighs on both, so their ratio is the part the fits' processes buy, and the serial time
is the work itself.

    python bench/report_speed.py [--bootstrap 100] [--out report.html] [--repeat 1] [--decide]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import scaling_ladder as sl
from scaling_ladder.laws.fit import jobs
from scaling_ladder.report import build_report

SIZE_TARGET, TIME_TARGET = 5e6, 10.0
GOALS = {False: 2.0, True: 5.0}  # issue 16: without and with --decide


def one_build(bootstrap: int, decide: bool, out: Path | None) -> dict:
    """Build, render and write the report once; the time of every stage."""
    marks: dict[str, float] = {}

    def progress(done: int, total: int) -> None:
        # the last 8 steps are the sections; everything before them is fitting (and comparing)
        if done >= total - 8 and "fits" not in marks:
            marks["fits"] = time.perf_counter()

    t0 = time.perf_counter()
    obs = sl.datasets.load("overtrain")
    t_read = time.perf_counter() - t0
    t1 = time.perf_counter()
    report = build_report(obs, metric="val/c4", baseline="c4", bootstrap=bootstrap,
                          compare=True if decide else None, progress=progress)
    t_build = time.perf_counter() - t1
    t_fit = marks.get("fits", t1) - t1
    t2 = time.perf_counter()
    html = report.html
    t_render = time.perf_counter() - t2
    out = out or Path(tempfile.mkdtemp()) / "overtrain.html"
    t3 = time.perf_counter()
    report.write(out)
    t_write = time.perf_counter() - t3
    return dict(total=time.perf_counter() - t0, read=t_read, fit=t_fit,
                sections=t_build - t_fit, render=t_render, write=t_write,
                size=len(html.encode()), out=out, figures=len(report.figures),
                runs=report.meta["runs"], metrics=obs.frame["metric"].nunique())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", type=int, default=100)
    ap.add_argument("--out", type=Path, default=None, help="keep the report here")
    ap.add_argument("--repeat", type=int, default=1, help="best of this many builds")
    ap.add_argument("--decide", action="store_true",
                    help="also run the recipe comparison in the same build (ladder report "
                         "--decide); not part of the target")
    ap.add_argument("--jobs", type=int, default=None, help="processes (default: every core)")
    args = ap.parse_args()
    with jobs(1):  # the baseline: one process
        serial = min((one_build(args.bootstrap, args.decide, None) for _ in range(args.repeat)),
                     key=lambda r: r["total"])
    with jobs(args.jobs):
        runs = [one_build(args.bootstrap, args.decide, args.out) for _ in range(args.repeat)]
    b = min(runs, key=lambda r: r["total"])
    print(f"over-training suite: {b['runs']} runs, {b['metrics']} metrics, "
          f"{b['figures']} figures, bootstrap {args.bootstrap}"
          + (", comparison run here" if args.decide else ""))
    fit = "fit 3 recipes" + (" + compare" if args.decide else "")
    for name, r in (("--jobs 1 (baseline)", serial), (f"--jobs {args.jobs or 'all'}", b)):
        print(f"  {name}: read {r['read']:.2f} s | {fit} {r['fit']:.2f} s | sections and "
              f"figures {r['sections']:.2f} s | render {r['render']:.2f} s | write "
              f"{r['write']:.2f} s | total {r['total']:.2f} s")
    print(f"  total {b['total']:.2f} s = {b['total'] / serial['total']:.2f}x the baseline's "
          f"{serial['total']:.2f} s (fits {b['fit'] / max(serial['fit'], 1e-9):.2f}x)")
    goal = GOALS[args.decide]
    print(f"  target < {TIME_TARGET:g} s: {'met' if b['total'] < TIME_TARGET else 'MISSED'}; "
          f"issue 16 goal <= {goal:g} s: {'met' if b['total'] <= goal else 'MISSED'}")
    print(f"  size {b['size'] / 1e6:.2f} MB (target < {SIZE_TARGET / 1e6:g} MB: "
          f"{'met' if b['size'] < SIZE_TARGET else 'MISSED'}) -> {b['out']}")


if __name__ == "__main__":
    main()
