"""Plain sentences that say what the numbers show, computed from the metrics (never canned)."""

from __future__ import annotations


def verdict(gain_mean: float, gain_std: float) -> str:
    """Whether a paired gain is beyond its seed spread (mean ± std over replicates)."""
    if gain_mean > 0 and gain_mean > gain_std:
        return "improved"
    if gain_mean < 0 and -gain_mean > gain_std:
        return "hurt"
    return "did not change beyond the seed spread"


def reconstruction_sentence(m: dict) -> str:
    t, b = m["test"], m["baseline_mean_image_test"]
    shape = "×".join(map(str, m["latent_shape"]))
    return (
        f"The VAE maps each image to a {shape} latent ({m['compression']:.1f}× fewer numbers) and reconstructs "
        f"held-out test images at {t['psnr']:.2f} dB PSNR / SSIM {t['ssim']:.3f}, versus {b['psnr']:.2f} dB / "
        f"{b['ssim']:.3f} for predicting the mean training image."
    )


def augmentation_sentence(m: dict) -> str:
    if "fd_synthetic_vs_test" not in m:
        return "No augmentation was run (augment.method = none): the classifiers train on real latents only."
    fd, base = m["fd_synthetic_vs_test"], m["fd_real_train_vs_test"]
    ratio = fd["mean"] / base if base > 0 else float("inf")
    closeness = "about as close to" if ratio < 1.25 else "further from"
    return (
        f"{m['method']} added {m['n_synthetic_per_replicate']} latents per replicate. Their Fréchet distance to "
        f"real test latents is {fd['mean']:.2f} ± {fd['std']:.2f}, versus {base:.2f} for the real training latents: "
        f"the synthetic set is {closeness} the real distribution ({ratio:.2f}× the real-vs-real distance)."
    )


def classification_sentence(m: dict, models: list[str]) -> str:
    base = m["baseline_majority"]["balanced_accuracy"]
    parts = []
    for name in models:
        real = m[name]["real"]["balanced_accuracy"]
        text = f"{name} reaches {real['mean']:.3f} balanced accuracy on real latents (majority class: {base:.3f})"
        if "augmentation_gain_balanced_accuracy" in m[name]:
            g = m[name]["augmentation_gain_balanced_accuracy"]
            text += f"; {m['augment_method']} augmentation {verdict(g['mean'], g['std'])} ({g['mean']:+.3f} ± {g['std']:.3f})"
        parts.append(text)
    return ". ".join(parts) + "."


def scorer_sentence(m: dict, schedulers: list[str], collapse_std: float = 0.25) -> str:
    const = m["baseline_constant"]["mean_mae"]
    clean = m["clean"]
    parts = [f"On clean latents the ridge scorer has MAE {clean['mae']:.3f} (Spearman {clean['spearman']:.2f}) "
             f"against {const:.3f} for the constant train-mean predictor"]
    for name in schedulers:
        beats = [k for k, v in m[name].items() if v["mae"] < const]
        collapsed = [k for k, v in m[name].items() if v["pred_std"] < collapse_std]
        text = f"{name} beats the constant at t_frac {', '.join(beats)}" if beats else f"{name} never beats the constant"
        if collapsed:
            text += f" and collapses to a near-constant prediction at t_frac {', '.join(collapsed)}"
        parts.append(text)
    return "; ".join(parts) + "."
