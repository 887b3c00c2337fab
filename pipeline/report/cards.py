"""The report's first screen: one card per research question — the headline number, its baseline,
the verdict, one picture. Each card names the metrics file and the JSON pointer (RFC 6901) its
number comes from, so the browser test checks the page against the files."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from PIL import Image

from pipeline.io import read_json
from pipeline.metrics.verdicts import lower_bound
from pipeline.report.html import Card
from pipeline.report.summaries import GUIDE_TARGET, exit_words, fresh_headline


def pointer(*keys: str) -> str:
    """A JSON pointer to ``keys`` ("/" and "~" inside a key escaped as the RFC says)."""
    return "".join("/" + str(k).replace("~", "~0").replace("/", "~1") for k in keys)


def resolve(document, ptr: str):
    """The value of ``document`` at the JSON pointer ``ptr``."""
    for part in ptr.split("/")[1:]:
        document = document[part.replace("~1", "/").replace("~0", "~")]
    return document


def small_png(path: Path, width: int = 360) -> bytes | None:
    """``path`` downscaled to ``width`` px wide (a card's picture; the section keeps the full size)."""
    if not path.exists():
        return None
    im = Image.open(path).convert("RGB")
    if im.width > width:
        im = im.resize((width, round(im.height * width / im.width)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _card(r: Path, source: str, ptr: str, fmt: str, **kw) -> Card:
    raw = float(resolve(read_json(r / source), ptr))
    return Card(value=format(raw, fmt), source=source, key=ptr, raw=raw, **kw)


def reconstruction_card(r: Path) -> Card:
    m = read_json(r / "encode/metrics.json")
    base = m["baseline_mean_image_test"]["psnr"]
    gap = m["test"]["psnr"] - base
    return _card(r, "encode/metrics.json", pointer("test", "psnr"), ".2f",
                 question="VAE reconstruction", finding="test PSNR (dB) of the VAE's reconstructions",
                 baseline=f"{base:.2f} dB (the mean training image)",
                 verdict=f"{gap:+.2f} dB over the baseline" if gap > 0 else "no better than the mean image",
                 tone="good" if gap > 0 else "bad", picture=small_png(r / "encode/recon_grid.png"))


def augmented(bench: dict) -> dict:
    """The benchmark's augmented model × regime pairs (those with a paired gain and verdict)."""
    return {k: v for k, v in bench.get("results", {}).items() if "verdict" in v}


def best_real(bench: dict) -> str | None:
    """The ``results`` key of the best balanced accuracy in the real regime (None: no such fit)."""
    real = {k: v for k, v in bench.get("results", {}).items() if k.endswith("/real")}
    return max(real, key=lambda k: real[k]["balanced_accuracy"]["mean"]) if real else None


def trained_levels(cnn_t: dict) -> list[str]:
    """A scorer's noise levels (t/T keys) in order, without the held-out ones ("0.1 heldout")."""
    return sorted((t for t in cnn_t if " " not in t), key=float)


def augmentation_card(r: Path) -> Card | None:
    bench = read_json(r / "bench/metrics.json")
    aug = augmented(bench)
    if not aug:
        return None
    best = max(aug, key=lambda k: aug[k]["gain"]["mean"])
    counts = pd.Series([v["verdict"] for v in aug.values()]).value_counts()
    g = aug[best]["gain"]
    helped = int(counts.get("improved", 0))
    return _card(r, "bench/metrics.json", pointer("results", best, "gain", "mean"), "+.3f",
                 question="Latent augmentation and generated data",
                 finding=f"largest balanced-accuracy gain: {best.replace('/', ' · ')} "
                         + (f"({g['level']:.1%} interval {g['lo']:+.3f} … {g['hi']:+.3f}: seeds and test images, "
                            f"Holm over {bench['verdicts']['comparisons']} comparisons)" if g.get("lo") is not None else
                            "(one seed: no interval)"),
                 baseline="0 (the same model and seeds without the augmenter)",
                 verdict=(f"helped {helped}, hurt {int(counts.get('hurt', 0))}, no clear change "
                          f"{int(counts.get('no clear change', 0))} of {len(aug)} model × regime pairs"),
                 tone="good" if helped else "neutral", picture=small_png(r / "compare/fidelity.png"))


def classification_card(r: Path) -> Card | None:
    bench = read_json(r / "bench/metrics.json")
    best = best_real(bench)
    if best is None:
        return None
    majority = bench["baseline_majority"]["balanced_accuracy"]
    value = bench["results"][best]["balanced_accuracy"]
    return _card(r, "bench/metrics.json", pointer("results", best, "balanced_accuracy", "mean"), ".3f",
                 question="Classification", finding=f"best balanced accuracy on real data: {best.replace('/', ' · ')} "
                                                     f"(± {value['std']:.3f} over seeds)",
                 baseline=f"{majority:.3f} (majority class)",
                 verdict="above the baseline" if value["mean"] > majority else "no better than the majority class",
                 tone="good" if value["mean"] > majority else "bad", picture=small_png(r / "bench/latents.png"))


def scoring_card(r: Path) -> Card | None:
    """Early exit on fresh-noise generations (DDIM when run): the share of the runs the judge rates severe that the
    best predictor (chosen on calibration runs) stops by t/T = ``score.exit_from``, with its guaranteed false-stop rate."""
    score = read_json(r / "score/metrics.json")
    head = fresh_headline(score.get("fresh") or {})
    if head is None:
        return None
    name, block = head
    w = exit_words(block)
    ex, rule = w["exit"], w["rule"]
    judge = (score["fresh"].get("judge") or {}).get("test") or {}
    if block["best"]["predictor"] is None:   # no early exit: the card shows how well the best predictor ranks instead
        level = min(block["levels"], key=lambda f: abs(float(f) - rule["exit_from"]))
        lead = max(block["predictors"], key=lambda p: block["predictors"][p][level]["spearman"]["mean"] or -1.0)
        if block["predictors"][lead][level]["spearman"]["mean"] is None:   # the judge rated every test run alike
            return _card(r, "score/metrics.json", pointer("fresh", name, "label", "severe_share_test"), ".2f",
                         question="Artifact scoring mid-generation",
                         finding=f"share of {name} fresh-noise test runs the judge rates severe", baseline="–",
                         verdict=w["verdict"], tone="bad", picture=small_png(r / "score/fresh.png"))
        return _card(r, "score/metrics.json", pointer("fresh", name, "predictors", lead, level, "spearman", "mean"), ".2f",
                     question="Artifact scoring mid-generation",
                     finding=f"Spearman ρ at t/T = {level} of {lead} with the judge's score ({name}, fresh-noise test runs)",
                     baseline="0 (constant predictor)", verdict=w["verdict"], tone="bad",
                     picture=small_png(r / "score/fresh.png"))
    return _card(r, "score/metrics.json", pointer("fresh", name, "early_exit", w["predictor"], "caught", "mean"), ".2f",
                 question="Artifact scoring mid-generation",
                 finding=(f"share of severe {name} generations stopped by t/T = {rule['exit_from']:g} ({block['runs']['test']} fresh-noise "
                          f"test runs; {w['predictor']}, chosen on calibration runs); false stops {ex['false_stop']['mean']:.1%} "
                          f"(threshold set for ≤ {rule['max_false_stop']:.0%} at {1 - rule['delta']:.0%} confidence); "
                          f"{ex['saved']['mean']:.0%} of sampling saved"),
                 baseline=(f"0 (the constant predictor cannot stop selectively); labels from a judge with ρ "
                           f"{judge.get('spearman', float('nan')):.2f} against people"),
                 verdict=w["verdict"], tone="good" if w["met"] else "bad", picture=small_png(r / "score/fresh_exit.png"))


def guidance_card(r: Path) -> Card | None:
    if not (r / "guide/metrics.json").exists():
        return None
    m = read_json(r / "guide/metrics.json")
    k = m["kinds"]
    acc, free, prior = k["classifier"]["class_accuracy"], k["unguided"]["class_accuracy"]["mean"], m["class_prior"]
    lifted = m["vs_unguided"]["classifier"]["class_accuracy"]["verdict"] == "better"
    bound = lower_bound(acc["mean"], acc["std"], m["seeds"])
    reached = bound >= GUIDE_TARGET
    return _card(r, "guide/metrics.json", pointer("kinds", "classifier", "class_accuracy", "mean"), ".2f",
                 question="Guided generation",
                 finding=(f"classifier-guided samples keep the requested class (independent judge; ± {acc['std']:.2f}); "
                          f"{k['combined']['class_accuracy']['mean']:.2f} with the discriminator and OOD terms added; "
                          f"scale {m['operating']['classifier']:g} chosen on the validation split, never the test one"),
                 baseline=f"{free:.2f} unguided, {prior:.2f} class prior",
                 verdict=(f"lifts the requested class over unguided sampling (Holm-controlled); "
                          f"{'reaches' if reached else 'not shown to reach'} the {GUIDE_TARGET:.2f} target "
                          f"(one-sided 95 % lower bound over seeds {bound:.2f})"
                          if lifted else "not shown to lift the requested class over unguided sampling"),
                 tone="good" if lifted and reached else "neutral" if lifted else "bad",
                 picture=small_png(r / "guide/gallery.png"))


def headline_cards(r: Path) -> list[Card]:
    """The cards in page order; a question whose stage wrote nothing is left out."""
    cards = [reconstruction_card(r), augmentation_card(r), classification_card(r), scoring_card(r), guidance_card(r)]
    return [c for c in cards if c is not None]
