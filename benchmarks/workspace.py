"""A throw-away copy of the project as its own git + DVC repo (for the benchmark and the e2e test)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def run_env() -> dict:
    """Environment for DVC subprocesses: this interpreter's ``python`` first on PATH, no analytics."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env.setdefault("GIT_AUTHOR_NAME", "latent-lab")
    env.setdefault("GIT_AUTHOR_EMAIL", "latent-lab@localhost")
    env.setdefault("GIT_COMMITTER_NAME", "latent-lab")
    env.setdefault("GIT_COMMITTER_EMAIL", "latent-lab@localhost")
    return env


def sh(args: list[str], cwd: Path, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=run_env(), check=check, text=True, capture_output=True, timeout=timeout)


def copy_project(dest: Path, params_override: dict | None = None, presets: dict | None = None) -> Path:
    """Copy the files git sees (tracked and untracked-not-ignored) into ``dest`` and commit them there.

    ``presets`` maps an axis of conf/ to a preset (``{"data": "emoji", "vae": "sd"}``): the copy's
    conf/config.yaml selects it. ``params_override`` maps ``section.key`` to a value, written into the
    copy's conf/site/local.yaml (applied last). The copy's params.yaml is then composed from its conf/,
    so ``dvc repro`` runs it and a later ``dvc exp run -S`` (which recomposes) keeps both.
    """
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    if presets:
        config = (dest / "conf/config.yaml").read_text()
        for axis, name in presets.items():
            line = re.search(rf"^  - {axis}: \S+", config, flags=re.M)
            if line is None:
                raise ValueError(f"conf/config.yaml has no {axis} preset axis")
            config = config.replace(line.group(0), f"  - {axis}: {name}", 1)
        (dest / "conf/config.yaml").write_text(config)
    if params_override:
        site: dict = {}
        for dotted, value in params_override.items():
            section, key = dotted.split(".", 1)
            site.setdefault(section, {})[key] = value
        (dest / "conf/site").mkdir(parents=True, exist_ok=True)
        (dest / "conf/site/local.yaml").write_text("# @package _global_\n" + yaml.safe_dump(site, sort_keys=False))
    if presets or params_override:
        from stages.compose import compose

        compose([], dest / "params.yaml", dest / "conf")
    sh(["git", "init", "-q", "-b", "main"], dest)
    sh(["git", "add", "-A"], dest)
    sh(["git", "commit", "-q", "-m", "project copy"], dest)
    return dest


# The end-to-end tests' shrunk default (tests/test_e2e.py) and the fault benchmark's (benchmarks/faults.py):
# every stage and report section runs, in minutes.
SHRUNK = {
    "data.n_images": 170,
    "data.n_artifact": 600,
    "vae.steps": 80,
    "vae.batch_size": 16,
    "augment.replicates": 2,
    "analyze.tsne_points": 80,
    "analyze.perturb_images": 16,
    "analyze.pairs": 1,
    "analyze.path_steps": 4,
    "fidelity.components": 8,
    "fidelity.gallery_size": 8,
    "fidelity.tsne_points": 40,
    "compare.methods": ["gaussian", "slerp", "inversion"],
    "bench.seeds": 2,
    "bench.latent_models": ["logreg", "knn", "attention"],
    "bench.pixel_models": ["vgg", "mobilenet"],
    "bench.pixel_inputs": ["pixels", "reconstructed"],
    "bench.methods": ["smote", "random", "class_guided", "guided_interpolation"],   # generated: low-data regimes only
    "bench.low_data_per_class": 8,
    "bench.logreg": {"C": 0.01, "max_iter": 200, "regimes": ["real", "augmented", "synthetic", "low_data", "low_data_augmented"]},
    "bench.knn": {"neighbors": 5, "regimes": ["real", "augmented", "synthetic", "low_data", "low_data_augmented"]},
    "bench.attention": {"patch": 2, "dim": 16, "depth": 1, "heads": 2, "stem": 1, "steps": 10, "batch_size": 32,
                        "lr": 0.002, "augment": "dihedral", "class_weight": True, "regimes": ["real", "augmented"]},
    **{f"bench.{net}": {"width": 4, "steps": 10, "batch_size": 32, "lr": 0.003, "augment": "dihedral", "class_weight": True}
       for net in ("vgg", "resnet", "mobilenet")},
    "noise.t_fracs": [0.1, 0.5, 0.9],
    "noise.heldout_fracs": [0.3],
    "score.seeds": 2,
    "score.level_steps": 300,
    "score.cond_steps": 10,
    "score.cnn_channels": [16, 16],
    "score.mlp_hidden": [16],
    "score.level_models": ["ridge", "mlp"],
    "score.expert_model": "mlp",
    "bench.latent_cnn": {"width": 4, "steps": 30, "batch_size": 32, "lr": 0.003, "augment": "dihedral",
                         "class_weight": True, "regimes": ["real"]},   # the interpolation judge's recipe
    "noise.schedulers": ["ddpm", "ddim", "euler", "dpmsolver"],   # every scheduler's code path (default: no euler)
    "diffusion.samplers": ["ddpm", "ddim", "euler", "dpmsolver"],
    "diffusion.block_out_channels": [8, 16],
    "diffusion.steps": 60,
    "diffusion.sample_steps": [5, 10],
    "diffusion.samples": 24,
    "diffusion.seeds": 2,
    "diffusion.components": 8,
    "diffusion.gallery": 4,
    "diffusion.trajectory_samples": 2,
    "diffusion.trajectory_points": 4,
    "interpolate.pairs": 6,
    "interpolate.points": 3,
    "interpolate.steps": 5,
    "interpolate.seeds": 2,
    "interpolate.strengths": [0.1, 0.3],
    "interpolate.validation": {"fraction": 0.3, "seeds": 1, "pairs": 3},
    "interpolate.strips": 2,
    "artifact_unet.steps": 60,
    "runs.inversion_images": 0,
    "runs.batch_size": 7,   # the test split and the fresh runs stream through in several chunks
    "runs.fresh": {"train": 20, "calibration": 100, "test": 60, "steps": 10, "checks": [0.9, 0.5, 0.2]},
    "runs.judge": {"channels": [16, 32], "steps": 400, "batch_size": 32, "lr": 0.003},
    "guide.steps": 5,
    "guide.samples_per_class": 4,
    "guide.seeds": 2,
    "guide.channels": [8, 8],
    "guide.t_dim": 8,
    "guide.classifier_steps": 40,
    "guide.discriminator_steps": 20,
    "guide.generated": 32,
    "guide.scales": {"classifier": [0.05, 0.15], "discriminator": [2.0], "ood": [0.3]},
    "guide.validation": {"fraction": 0.3, "seeds": 1, "max_frechet_ratio": 1.5},
    "guide.ood_images": 32,
    "guide.gallery_per_class": 1,
}
# The other end-to-end projects (emoji, balanced classes) test their data path, not generation or
# scoring: one scheduler, one sampler, no generated methods or scale sweep keep them short.
LIGHT = {"noise.schedulers": ["ddim"], "score.seeds": 1, "diffusion.samplers": ["ddim"], "diffusion.sample_steps": [5],
         "bench.methods": ["smote", "random"], "bench.latent_models": ["knn"], "bench.pixel_models": ["vgg"],
         "bench.pixel_inputs": ["pixels"],
         "guide.scales": {"classifier": [0.15], "discriminator": [2.0], "ood": [0.3]},
         "guide.validation": {"fraction": 0.3, "seeds": 1, "max_frechet_ratio": 1.5},
         "interpolate.pairs": 4, "interpolate.strengths": [0.1],
         "interpolate.validation": {"fraction": 0.3, "seeds": 1, "pairs": 3},
         "artifact_unet.steps": 20, "runs.inversion_images": 14, "runs.judge": {"channels": [8], "steps": 50, "batch_size": 32, "lr": 0.003},
         "runs.fresh": {"train": 10, "calibration": 20, "test": 20, "steps": 5, "checks": [0.9, 0.5]}}
