"""The SD-geometry rehearsal (benchmarks/sd_rehearsal.py): the whole pipeline with `dvc repro`, on CPU,
tiny counts, at 256 px through an AutoencoderKL with SD 1.x's exact config (4×32×32 latents) and at
512 px through TAESD's config (4×64×64). Random weights: shapes, memory and time, not quality."""

import json

import pytest

from benchmarks.sd_rehearsal import GEOMETRIES, REHEARSAL, rehearse, table, write_vaes
from benchmarks.workspace import sh


class Geometry:
    """The checks of one geometry's rehearsal; a subclass per geometry, so each is a unit of its own
    that a pytest-xdist worker runs whole (``--dist loadscope``, ``.ci/run``)."""

    geometry = ""

    @pytest.fixture(scope="class")
    def run(self, tmp_path_factory):
        geometry, preset = self.geometry, GEOMETRIES[self.geometry]["preset"]
        vae = write_vaes(tmp_path_factory.mktemp("vaes"), (preset,))[preset]
        result = rehearse(geometry, tmp_path_factory.mktemp(geometry), vae, timeout=3600)   # one core under xdist
        print(f"\n{geometry}\n{table(result)}")
        assert result.code == 0, result.tail
        return result

    def test_every_stage_runs_at_sd_geometry_and_prints_its_peak_memory(self, run):
        g = GEOMETRIES[run.geometry]
        side, k = g["latent"], {32: 1, 64: 2}[g["latent"]]
        defined = set(sh(["dvc", "stage", "list", "--name-only"], run.root).stdout.split())
        assert {s["name"] for s in run.stages} == defined and len(defined) >= 18
        assert sh(["dvc", "status", "--json"], run.root).stdout.strip() in ("{}", "")   # every stage ran and is current
        assert all(s["peak_mib"] is not None for s in run.stages), [s["name"] for s in run.stages if s["peak_mib"] is None]
        # tiny counts: every stage stays far below the 4 GiB a 24 GB machine can give each of a few parallel runs
        assert max(s["peak_mib"] for s in run.stages) < 4096, table(run)

        vae = run.metrics("reports/vae/metrics.json")
        assert vae["source"] == "pretrained" and vae["kind"] == ("kl" if g["preset"] == "sd" else "tiny")
        assert vae.get("sd15") is (g["preset"] == "sd")
        assert run.metrics("reports/encode/metrics.json")["latent_shape"] == [4, side, side]
        # the recipes followed the side: one more U-Net resolution per doubling over 16
        unet = json.loads((run.root / "models/unet/unet/config.json").read_text())
        assert len(unet["block_out_channels"]) == len(REHEARSAL["diffusion.block_out_channels"]) + k
        assert unet["sample_size"] == side
        judge = json.loads((run.root / "models/judge/config.json").read_text())["model"]   # the scorer CNNs' recipe
        assert judge["in_shape"] == [4, side, side]
        assert len(judge["channels"]) == len(REHEARSAL["runs.judge"]["channels"]) + k
        page = (run.root / "reports/index.html").read_text()
        assert "Traceback" not in page and "Source: shapes" in page

    def test_balanced_classes_make_no_samples_at_sd_geometry(self, run):
        """The rehearsal's two classes are balanced: over-samplers have nothing to make, which the pipeline
        reports as "no samples needed" instead of failing (also at 32 px: tests/test_e2e.py's imbalanced run)."""
        assert run.metrics("reports/fidelity/gaussian/metrics.json")["no_samples_needed"] is True
        assert run.metrics("reports/compare/metrics.json") == {"gaussian": {"no_samples_needed": 1}}
        assert json.loads((run.root / "reports/bench_latent/knn/skipped.json").read_text())["no_samples_needed"] == [
            "real+smote", "real+random"]
        results = run.metrics("reports/bench/metrics.json")["results"]
        assert "knn/latents/real+smote" not in results and "knn/latents/low_data+smote" in results
        page = (run.root / "reports/index.html").read_text()
        assert "No method made samples" in page and "No samples needed" in page


class TestSd256(Geometry):
    geometry = "sd256"


class TestTaesd512(Geometry):
    geometry = "taesd512"
