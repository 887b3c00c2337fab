"""The whole pipeline at Stable Diffusion geometry, on CPU, with tiny counts: each stage's time and peak memory.

Two geometries, each a full `dvc repro` of a fresh project copy:

* ``sd256``: 256 px images → 4×32×32 latents through an ``AutoencoderKL`` with Stable Diffusion
  1.x's exact architecture config (83.7 M parameters, scaling factor 0.18215), and
* ``taesd512``: 512 px images → 4×64×64 latents through an ``AutoencoderTiny`` with TAESD's config.

Both VAEs are randomly initialised and saved locally with ``save_pretrained`` (safetensors): no Hub
is reachable here, so this tests shapes, memory and time, not reconstruction quality. The presets
do the switching (``-S vae=sd`` / ``vae=taesd``, ``vae.id`` pointed at the local copy), and the
recipes follow the latent side (``base.recipes: geometry``). Each stage prints its peak resident
memory (``stages.cli``); the table lists it beside the stage's wall time.

Run: ``python benchmarks/sd_rehearsal.py [--geometry sd256 taesd512] [--device cpu|cuda] [--keep DIR]``.
``tests/test_sd_rehearsal.py`` runs the same function in CI.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.workspace import copy_project, run_env  # noqa: E402

GEOMETRIES = {"sd256": {"size": 256, "preset": "sd", "latent": 32},
              "taesd512": {"size": 512, "preset": "taesd", "latent": 64}}
STAGE_LINE = re.compile(r"^Running stage '([^']+)'")
PEAK_LINE = re.compile(r"^(\S+): peak resident memory (\d+) MiB \(children (\d+) MiB\)(?: cuda (\d+) MiB)?")

# Tiny counts: every stage and report section runs; every decode through the SD-sized VAE is counted.
REHEARSAL = {
    "data.n_images": 32, "data.class_weights": [1, 1], "data.test_fraction": 0.5,
    "data.n_artifact": 12, "data.artifact_test_fraction": 0.5, "data.artifact_kinds": ["blur", "noise"],
    "encode.batch_size": 16, "encode.grid_size": 2,
    "augment.replicates": 1,
    "analyze.worst_k": 2, "analyze.tsne_points": 10, "analyze.tsne_perplexity": 3.0, "analyze.silhouette_points": 10,
    "analyze.pairs": 1, "analyze.path_steps": 3, "analyze.sigmas": [0.5], "analyze.perturb_images": 2,
    "analyze.preview_images": 2,
    "fidelity.components": 4, "fidelity.k": 3, "fidelity.gallery_size": 2, "fidelity.tsne_points": 10,
    "fidelity.tsne_perplexity": 3.0,
    "compare.methods": ["gaussian"],
    "bench.seeds": 1, "bench.latent_models": ["knn", "latent_cnn", "attention"], "bench.pixel_models": ["vgg"],
    "bench.pixel_inputs": ["pixels"], "bench.methods": ["smote", "random", "class_guided"],
    "bench.low_data_per_class": 6, "bench.gallery_per_class": 1,
    "bench.knn": {"neighbors": 3, "regimes": ["real", "augmented", "low_data", "low_data_augmented"]},
    "bench.latent_cnn": {"width": 4, "steps": 10, "batch_size": 8, "lr": 0.003, "augment": "dihedral",
                         "class_weight": True, "regimes": ["real"]},
    "bench.attention": {"patch": 4, "dim": 16, "depth": 1, "heads": 2, "stem": 1, "steps": 10, "batch_size": 8,
                        "lr": 0.003, "augment": "dihedral", "class_weight": True, "regimes": ["real"]},
    "bench.vgg": {"width": 4, "steps": 5, "batch_size": 8, "lr": 0.003, "augment": "dihedral", "class_weight": True},
    "noise.schedulers": ["ddim"], "noise.t_fracs": [0.1, 0.5, 0.9], "noise.heldout_fracs": [0.3],
    "noise.num_inference_steps": 10,
    "score.seeds": 1, "score.workers": 1, "score.level_steps": 20, "score.cond_steps": 10, "score.cnn_channels": [8, 8],
    "score.mlp_hidden": [8], "score.batch_size": 16, "score.t_dim": 8,
    "diffusion.block_out_channels": [8, 16, 16], "diffusion.steps": 5, "diffusion.batch_size": 8,
    "diffusion.samplers": ["ddim"], "diffusion.sample_steps": [3], "diffusion.samples": 16, "diffusion.seeds": 1,
    "diffusion.components": 4, "diffusion.k": 2, "diffusion.gallery": 1, "diffusion.trajectory_samples": 1,
    "diffusion.trajectory_points": 2,
    # two pairs of two interior points (4 samples: the fewest the k = 2 manifold metrics take): 4 methods × 8
    # frames decoded and 8 to validate, where 3 pairs and k = 3 decoded 4 × 12 + 12
    "interpolate.pairs": 2, "interpolate.points": 2, "interpolate.steps": 3, "interpolate.seeds": 1,
    "interpolate.strengths": [0.1], "interpolate.validation": {"fraction": 0.4, "seeds": 1, "pairs": 2},
    "interpolate.strips": 1,
    "artifact_unet.steps": 5,
    "runs.fresh": {"train": 10, "calibration": 20, "test": 20, "steps": 3, "checks": [0.9, 0.5]},
    "runs.judge": {"channels": [8], "steps": 10, "batch_size": 8, "lr": 0.003}, "runs.inversion_images": 4,
    "runs.batch_size": 10,
    "guide.steps": 3, "guide.samples_per_class": 3, "guide.seeds": 1, "guide.channels": [8, 8], "guide.t_dim": 8,
    "guide.classifier_steps": 5, "guide.discriminator_steps": 5, "guide.generated": 16, "guide.batch_size": 8,
    "guide.scales": {"classifier": [0.15], "discriminator": [2.0], "ood": [0.3]},
    "guide.validation": {"fraction": 0.4, "seeds": 1, "max_frechet_ratio": 1.5}, "guide.ood_images": 16,
    "guide.gallery_per_class": 1,
}


def write_vaes(root: Path, presets: tuple[str, ...] = ("sd", "taesd")) -> dict[str, Path]:
    """Randomly initialised SD 1.x AutoencoderKL (``sd``) and TAESD AutoencoderTiny (``taesd``), those of
    ``presets``, saved as safetensors under ``root``."""
    import torch
    from diffusers import AutoencoderKL, AutoencoderTiny

    out = {p: root / {"sd": "sd15-vae", "taesd": "taesd"}[p] for p in presets}
    if "sd" in out and not (out["sd"] / "config.json").is_file():
        torch.manual_seed(0)
        AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                      block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                      norm_num_groups=32, sample_size=512, scaling_factor=0.18215).save_pretrained(out["sd"])
    if "taesd" in out and not (out["taesd"] / "config.json").is_file():
        torch.manual_seed(0)
        AutoencoderTiny().save_pretrained(out["taesd"])   # diffusers' defaults are TAESD's config
    return out


class TreeMemory(threading.Thread):
    """Samples the resident memory of every process under ``pid`` (dvc, the stage, its worker processes)
    every ``interval`` seconds; :meth:`take` returns the largest sum seen since the last call, in MiB.
    A stage's own peak is exact (``ru_maxrss``, printed by the stage); this adds its workers, which
    ``ru_maxrss`` of children misses while a pool keeps them alive. Spikes shorter than the interval
    can be missed."""

    def __init__(self, pid: int, interval: float = 0.5):
        super().__init__(daemon=True)
        import psutil   # accelerate's dependency: in every install

        self.root, self.interval, self.peak, self.stopped = psutil.Process(pid), interval, 0, False
        self._error = psutil.Error

    def run(self) -> None:
        while not self.stopped:
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except self._error:
                return
            total = 0
            for proc in procs:
                try:
                    total += proc.memory_info().rss
                except self._error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def take(self) -> int:
        peak, self.peak = self.peak, 0
        return round(peak / 2**20)


@dataclass
class Rehearsal:
    geometry: str
    root: Path
    seconds: float
    code: int
    stages: list[dict] = field(default_factory=list)   # name, seconds, peak_mib (the stage process), children_mib,
    #                                                    tree_mib (every process of the stage together, sampled)
    tail: str = ""

    def metrics(self, path: str) -> dict:
        return json.loads((self.root / path).read_text())


def rehearse(geometry: str, dest: Path, vae_dir: Path, *, device: str = "cpu", extra: dict | None = None,
             timeout: float | None = None) -> Rehearsal:
    """Copy the project into ``dest`` with the geometry's preset and :data:`REHEARSAL` counts, run
    ``dvc repro`` and collect each stage's wall time and peak memory from its output."""
    g = GEOMETRIES[geometry]
    override = {**REHEARSAL, "data.size": g["size"], "vae.id": str(vae_dir), "base.device": device, **(extra or {})}
    return repro(geometry, dest, override, {"vae": g["preset"]}, timeout=timeout)


def repro(name: str, dest: Path, override: dict, presets: dict, *, timeout: float | None = None,
          echo: bool = False) -> Rehearsal:
    """Copy the project into ``dest`` with ``presets`` and ``override`` (``benchmarks.workspace.copy_project``),
    run ``dvc repro`` and collect each stage's wall time and peak memory from its output (``echo``: print
    each stage's start and peak line as it comes, for long runs)."""
    copy_project(dest, override, presets=presets)
    start = time.perf_counter()
    proc = subprocess.Popen(["dvc", "repro"], cwd=dest, env=run_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    stages: list[dict] = []
    lines: list[str] = []
    deadline = start + timeout if timeout else None
    tree = TreeMemory(proc.pid)
    tree.start()
    for line in proc.stdout:
        lines = (lines + [line])[-60:]
        now = time.perf_counter() - start
        if echo and (STAGE_LINE.match(line) or PEAK_LINE.match(line)):
            print(f"[{now:7.0f} s] {line.rstrip()}", flush=True)
        if (m := STAGE_LINE.match(line)):
            if stages:
                stages[-1]["seconds"] = now - stages[-1]["start"]
                stages[-1]["tree_mib"] = tree.take()
            else:
                tree.take()   # dvc's own start
            stages.append({"name": m.group(1), "start": now, "seconds": None, "peak_mib": None, "children_mib": None,
                           "cuda_mib": None, "tree_mib": None})
        elif (m := PEAK_LINE.match(line)) and stages:
            stages[-1]["peak_mib"], stages[-1]["children_mib"] = int(m.group(2)), int(m.group(3))
            stages[-1]["cuda_mib"] = int(m.group(4)) if m.group(4) else None
        if deadline and time.perf_counter() > deadline:
            proc.kill()
            break
    code = proc.wait()
    wall = time.perf_counter() - start
    tree.stopped = True
    if stages and stages[-1]["seconds"] is None:
        stages[-1]["seconds"] = wall - stages[-1]["start"]
    if stages and stages[-1]["tree_mib"] is None:
        stages[-1]["tree_mib"] = tree.take()
    return Rehearsal(name, dest, wall, code, stages, "".join(lines))


def calibration() -> str:
    """This machine's speed, printed beside every time: ``../shared/tools/calib.py`` (conv steps/s)."""
    tool = Path(__file__).resolve().parents[2] / "shared/tools/calib.py"
    if not tool.is_file():
        return "n/a (../shared/tools/calib.py not found)"
    return subprocess.run([sys.executable, str(tool)], capture_output=True, text=True).stdout.strip()


def fresh_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def table(run: Rehearsal) -> str:
    rows = [f"{'stage':<26} {'seconds':>8} {'peak MiB':>9} {'children':>9} {'all procs':>9}"]
    for s in run.stages:
        peak = "-" if s["peak_mib"] is None else f"{s['peak_mib']}"
        kids = "-" if s["children_mib"] is None else f"{s['children_mib']}"
        tree = "-" if s.get("tree_mib") is None else f"{s['tree_mib']}"
        rows.append(f"{s['name']:<26} {s['seconds']:8.1f} {peak:>9} {kids:>9} {tree:>9}")
    peaks = [s["peak_mib"] for s in run.stages if s["peak_mib"] is not None]
    rows.append(f"{'total':<26} {run.seconds:8.1f} {max(peaks, default=0):>9}")
    return "\n".join(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--geometry", nargs="+", choices=sorted(GEOMETRIES), default=sorted(GEOMETRIES))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--keep", type=Path, help="run in this directory (one sub-folder per geometry) and keep it")
    args = parser.parse_args(argv)
    print(f"calibration: {calibration()}")
    with tempfile.TemporaryDirectory(prefix="sd-rehearsal-") as tmp:
        base = args.keep or Path(tmp)
        vaes = write_vaes(base / "vaes")
        for geometry in args.geometry:
            g = GEOMETRIES[geometry]
            run = rehearse(geometry, fresh_dir(base / geometry), vaes[g["preset"]], device=args.device)
            print(f"\n== {geometry}: {g['size']} px, 4×{g['latent']}×{g['latent']} latents, vae={g['preset']} "
                  f"(random weights), device {args.device}: exit {run.code}")
            print(table(run))
            if run.code:
                print(run.tail)
                raise SystemExit(run.code)
            shape = run.metrics("reports/encode/metrics.json")["latent_shape"]
            print(f"latent shape {shape}")


if __name__ == "__main__":
    main()
