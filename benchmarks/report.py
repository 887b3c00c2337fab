"""The report's budget: page size (≤ 4 MB; and what the figures as drawn would add), build time (≤ 15 s)
and time to draw every chart offline.

Builds ``reports/index.html`` of a project that has run (``--project``, default this checkout)
``--repeats`` times with the report stage's own code (in this process, so each build pays the
imports once: the first figure is the cold one), prints the size and the times, then opens the
page in headless Chromium with the network cut off and prints how long every chart took to draw,
how many charts drew, and any console error or blocked request. ``--screenshot PATH`` saves the
first screen (the README's picture).
Run: `python benchmarks/report.py [--project DIR] [--repeats 3] [--screenshot docs/report.png]`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.browser import CHARTS_DRAWN, drawn_charts, offline_page  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", type=Path, default=ROOT)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--screenshot", type=Path)
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp()) / "index.html"
    times = []
    for _ in range(args.repeats):   # a fresh process each time: what `dvc repro` pays
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "stages.report", "--reports", str(args.project / "reports"), "--out", str(out)],
                       cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    size = out.stat().st_size
    full = out.with_name("full.html")   # the figures as drawn, not in a palette: what turning them back on costs
    subprocess.run([sys.executable, "-m", "stages.report", "--reports", str(args.project / "reports"), "--out", str(full),
                    "--figures", "png"], cwd=ROOT, check=True, capture_output=True)
    print(f"report build (fresh process, {args.repeats} runs): {min(times):.2f} s best, {max(times):.2f} s worst "
          f"(budget 15 s)")
    print(f"report size: {size / 1e6:.2f} MB (budget 4 MB); with --figures png (figures as drawn) "
          f"{full.stat().st_size / 1e6:.2f} MB")
    with offline_page(out.as_uri()) as (page, log):
        t = time.perf_counter()
        page.wait_for_function(CHARTS_DRAWN, timeout=120_000)
        drawn = time.perf_counter() - t
        charts = drawn_charts(page)
        if args.screenshot:
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.screenshot))
    print(f"offline Chromium: {len(charts)} charts drawn ({', '.join(str(c['marks']) for c in charts)} marks) "
          f"{drawn:.2f} s after load; console errors {len(log.errors)}, blocked requests {len(log.blocked)}")
    if args.screenshot:
        print(f"first screen saved to {args.screenshot}")


if __name__ == "__main__":
    main()
