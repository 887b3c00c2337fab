"""Presets: params.yaml is conf/ composed by Hydra (as `dvc exp run` does), one switch per axis
(data, vae, compute) changes the pipeline consistently, and incoherent combinations stop at validation."""

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmarks.workspace import copy_project, sh
from stages.compose import compose
from stages.config import ParamsError, load_params

ROOT = Path(__file__).resolve().parents[1]
AXES = {axis: sorted(p.stem for p in (ROOT / "conf" / axis).glob("*.yaml")) for axis in ("data", "vae", "compute")}


def test_committed_params_are_the_composed_default():
    proc = subprocess.run([sys.executable, "-m", "stages.compose", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert AXES == {"data": ["diffusiondb", "digits", "emoji", "shapes"], "vae": ["sd", "taesd", "trained"],
                    "compute": ["cpu", "gpu"]}
    assert json.loads((ROOT / ".dvc/config").read_text().split("[hydra]")[1].split("=")[1].split()[0]) is True


def _compose(tmp_path, *overrides):
    out = tmp_path / "params.yaml"
    compose(list(overrides), out)
    return load_params(out), yaml.safe_load(out.read_text())


@pytest.mark.parametrize("data,vae,compute", list(itertools.product(*AXES.values())))
def test_every_combination_composes_or_stops_with_the_reason(tmp_path, data, vae, compute):
    choice = [f"data={data}", f"vae={vae}", f"compute={compute}"]
    small_images = data != "diffusiondb"          # 32 px unless the preset says otherwise
    coherent = (vae == "trained") == small_images
    if not coherent:
        with pytest.raises(ParamsError) as err:
            _compose(tmp_path, *choice)
        message = str(err.value)
        assert "data.size" in message and ("vae=sd" in message if vae == "trained" else "at least 64" in message)
        assert not (tmp_path / "params.yaml").exists()         # nothing half-written
        # the same choice at a size that fits composes
        _compose(tmp_path, *choice, f"data.size={32 if vae == 'trained' else 256}")
        return
    params, raw = _compose(tmp_path, *choice)
    assert params.data.source == data and params.latent_side() in (16, 32)
    assert params.vae.source == ("train" if vae == "trained" else "pretrained")
    assert (params.vae.kind == "tiny") == (vae == "taesd")
    assert (params.base.device, params.vae.dtype) == (("cuda", "float16") if compute == "gpu" else ("auto", "float32"))
    symmetry = {"digits": "none", "diffusiondb": "flip"}.get(data, "dihedral")
    assert params.guide.symmetry == symmetry and params.bench.vgg.augment == symmetry
    if compute == "gpu":   # wider recipes; the rest of each section as the default
        assert params.diffusion.block_out_channels == [64, 128, 256] and params.diffusion.samplers == ["ddpm", "ddim", "dpmsolver"]


def test_a_key_overrides_its_preset_and_a_typo_is_named(tmp_path):
    params, _ = _compose(tmp_path, "data=diffusiondb", "vae=taesd", "data.size=512", "diffusion.steps=7")
    assert (params.data.size, params.latent_side(), params.diffusion.steps) == (512, 64, 7)
    with pytest.raises(ParamsError, match="Could not find 'vae/sdxl'"):
        _compose(tmp_path, "vae=sdxl")
    with pytest.raises(ParamsError, match="data.sise"):
        _compose(tmp_path, "+data.sise=3")


def test_dvc_exp_run_switches_a_preset(tmp_path):
    """The real CLI: `dvc exp run -S data=digits` recomposes params.yaml from conf/ (the copy's site
    overrides kept) and the stage runs on the preset's data."""
    root = copy_project(tmp_path, {"data.n_images": 60, "data.n_artifact": 36})
    sh(["git", "rm", "-q", "dvc.lock"], root)   # only prepare runs: no other stage's outputs to account for
    sh(["git", "commit", "-q", "-m", "no lock"], root)
    out = sh(["dvc", "exp", "run", "prepare", "-S", "data=digits"], root, timeout=300)
    assert "Running stage 'prepare'" in out.stdout
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["data"]["source"] == "digits" and params["guide"]["symmetry"] == "none"
    assert params["data"]["n_images"] == 60                   # conf/site/local.yaml still applies
    prep = json.loads((root / "reports/prepare/metrics.json").read_text())
    assert prep["source"] == "digits" and prep["splits"]["train"]["n"] + prep["splits"]["test"]["n"] == 60
    shown = sh(["dvc", "params", "diff", "--json"], root).stdout
    assert json.loads(shown)["params.yaml"]["data.source"] == {"old": "shapes", "new": "digits"}
