"""Classifier guidance, ablated: what averaging over the data's symmetries and normalising the
gradient each do to the class an independent judge sees, and to realism.

On a finished run (``--project DIR``: its U-Net, its saved noise-aware classifier — trained on
random ``guide.symmetry`` views — and its latents),
draws the guide stage's sample sets — ``guide.samples_per_class`` per class, classes in turn,
``guide.sampler`` in ``guide.steps`` steps, from the same seeded noise — for ``guide.seeds``
seeds with four ways of turning the classifier into guidance, each at a few scales:

- plain: ``ε − s·√(1−ᾱ)·∇ log p(y | x_t)`` (Dhariwal & Nichol), scales in their units;
- symmetry: the same with ``log p`` averaged over the ``guide.symmetry`` views of the latent;
- normalised: each sample's gradient at unit RMS (scale = the ε shift per step);
- both (the default).

Each set is graded as the guide stage grades it: requested-class accuracy by an independent judge
(the ``bench.latent_cnn`` recipe on real train latents, one per seed; never a guide) and Fréchet /
precision / recall against real test latents, beside unguided sampling and the class prior.
Run: `python benchmarks/guidance.py --project DIR`. Takes about a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = {   # name: (symmetry, normalise, scales)
    "plain": (False, False, (8.0, 32.0, 128.0)),
    "symmetry": (True, False, (32.0, 64.0)),
    "normalised": (False, True, (0.15, 0.2)),
    "symmetry + normalised": (True, True, (0.1, 0.15, 0.2)),
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, required=True, help="a directory where `dvc repro` ran")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from pipeline.generate.evaluate import SampleReference
    from pipeline.generate.guidance import ClassifierGuide, load_guide_model
    from pipeline.generate.guided import requested_classes, sample
    from pipeline.generate.judge import independent_judge
    from pipeline.generate.sampling import starting_noise
    from pipeline.generate.unet import load_diffusion
    from pipeline.latents.store import read_latent_split
    from stages.config import load_params

    project = args.project.resolve()
    params = load_params(project / "params.yaml")
    cfg = params.guide
    train, test = read_latent_split(project / "data/latents", "train"), read_latent_split(project / "data/latents", "test")
    X, y, n_classes = train.latents, train.meta["label"].to_numpy(), len(train.class_names)
    model = load_diffusion(project / "models/unet")
    classifier, _ = load_guide_model(project / "models/guide/classifier")
    n = cfg.samples_per_class * n_classes
    reference = SampleReference(X, test.latents, n=n, components=params.diffusion.components, k=params.diffusion.k,
                                seed=params.base.seed)
    want = requested_classes(n, n_classes)
    results: dict[tuple[str, float], list[tuple[float, dict]]] = {}
    judge_acc = []
    for s in [params.base.seed + i for i in range(cfg.seeds)]:
        judge, acc = independent_judge(X, y, test.latents, test.meta["label"].to_numpy(), n_classes,
                                       params.bench.latent_cnn, seed=s)
        judge_acc.append(acc)
        x_T = starting_noise(n, train.shape, s)
        points = [("unguided", 0.0, None)] + [
            (name, scale, ClassifierGuide(classifier, torch.as_tensor(want), scale, model.shift,
                                          symmetry=cfg.symmetry if sym else "none", normalise=norm))
            for name, (sym, norm, scales) in VARIANTS.items() for scale in scales]
        for name, scale, guide in points:
            z = sample(model, guide, x_T, sampler=cfg.sampler, steps=cfg.steps, seed=s)
            results.setdefault((name, scale), []).append((float((judge(z) == want).mean()), reference.measure(z)))
    print(f"{n} samples per set ({cfg.sampler}, {cfg.steps} steps) × {cfg.seeds} seeds; symmetry = {cfg.symmetry}; "
          f"class prior {1 / n_classes:.3f}; judge test accuracy {np.mean(judge_acc):.3f} ± {np.std(judge_acc):.3f}")
    print(f"{'guidance':<24}{'scale':>7}  {'class accuracy':>16}  {'Fréchet':>8}  {'precision':>9}  {'recall':>6}")
    for (name, scale), rows in results.items():
        acc = np.array([a for a, _ in rows])
        fr, prec, rec = (np.mean([m[k] for _, m in rows]) for k in ("frechet", "precision", "recall"))
        print(f"{name:<24}{scale:>7g}  {acc.mean():>8.3f} ± {acc.std():.3f}  {fr:>8.1f}  {prec:>9.2f}  {rec:>6.2f}")


if __name__ == "__main__":
    main()
