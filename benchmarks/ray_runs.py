"""Runs-stage throughput, local engine against Ray Data on this machine.

Runs the real stage ``python -m stages.runs`` as a child process on the project's own artifact test
latents and artifact U-Net (``data/latents``, ``models/artifact_unet``: run ``dvc repro runs`` first) for N
and ``--factor`` × N images of the inversion runs (the part the Ray engine runs; the fresh-noise runs,
always local, are cut to 22 per scheduler so they add a small constant): ``engine: local``, and ``engine: ray`` with a local cluster the stage
starts, as one U-Net actor of 1 CPU and as two actors of half a CPU each. Every image is
DDIM-inverted and run by every scheduler in ``noise.schedulers`` (``noise.num_inference_steps``
steps each). Prints wall times, the fixed cost and the marginal images per second from the
difference between the two sizes, and the Ray / local ratios.

Run: `python benchmarks/ray_runs.py [--images 150] [--factor 4]`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import yaml  # noqa: E402

from benchmarks.ray_encode import ENGINES, print_rates  # noqa: E402   (the same engine settings, under params.runs)

def run_stage(work: Path, images: int, overrides: dict) -> float:
    """Wall seconds of one runs stage on the project's latents and U-Net with params.runs ``overrides``."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["runs"].update({k: v for k, v in overrides.items() if k != "ray"}, inversion_images=images,
                          fresh={**params["runs"]["fresh"], "train": 2, "calibration": 10, "test": 10})   # the inversion engine
    params["runs"]["ray"].update(overrides.get("ray", {}))
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    args = [sys.executable, "-m", "stages.runs", "--params", str(work / "params.yaml"), "--latents",
            str(ROOT / "data/latents"), "--unet", str(ROOT / "models/artifact_unet"), "--out", str(work / "runs"),
            "--judge", str(work / "judge"), "--reports", str(work / "reports")]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}   # the stage's own local cluster
    start = time.perf_counter()
    with open(work / "stage.log", "w") as err:
        done = subprocess.run(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, env=env)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"runs failed ({overrides}):\n{(work / 'stage.log').read_text()[-3000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=150)
    parser.add_argument("--factor", type=int, default=4)
    args = parser.parse_args()
    for need in ("data/latents", "models/artifact_unet"):
        if not (ROOT / need).exists():
            raise SystemExit(f"{need} is missing: run `dvc repro runs` first")
    sizes = (args.images, args.images * args.factor)
    walls = {name: {} for name in ENGINES}
    with tempfile.TemporaryDirectory(prefix="ray-runs-") as tmp:
        for count in sizes:
            for name, overrides in ENGINES.items():
                walls[name][count] = run_stage(Path(tmp), count, overrides)
                print(f"  {name:<24} {count:>5} images: {walls[name][count]:6.1f} s", flush=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["noise"]
    print(f"\nruns stage: DDIM inversion + {len(params['schedulers'])} schedulers × {params['num_inference_steps']} "
          "steps per image (2 CPU cores here):")
    print_rates(walls, sizes)


if __name__ == "__main__":
    main()
