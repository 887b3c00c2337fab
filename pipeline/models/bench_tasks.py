"""Worker tasks of the classifier benchmark: one fit per call, returning its result row.

Kept apart from :mod:`pipeline.models.bench` (the summary), so the stage that only summarises
does not depend on the models and augmenters.
"""

from __future__ import annotations

from pipeline.models.bench import result_row, timed_fit


def _fit_net(net, x, y, o: dict, seed: int, device, n_classes: int):
    from pipeline.models.classifier_nets import fit_classifier   # torch: imported only by the workers that need it

    fit_classifier(net, x, y, steps=o["steps"], batch_size=o["batch_size"], lr=o["lr"], seed=seed, device=device,
                   augment=o["augment"], class_weight=o["class_weight"], n_classes=n_classes)


def latent_task(task: dict) -> dict:
    """One latent-model fit for a worker process. ``task``: model, options (its params section),
    regime (:class:`~pipeline.models.regimes.Regime`), seed, X / y (train latents (N, C, H, W) and
    labels), X_test / y_test, class_names, cap, grow, augment (the augmenters' options), threads,
    ``maps``: return the attention maps of every test image (attention model only), and ``device``
    (torch models; ``cpu`` when absent). Returns the result row and the test predictions."""
    import torch

    from pipeline.models.classifier_nets import LatentAttention, VGGNet, predict
    from pipeline.models.classifiers import make_classifier
    from pipeline.models.regimes import training_set

    torch.set_num_threads(task["threads"])
    device = task.get("device", "cpu")
    X, y, X_test = task["X"], task["y"], task["X_test"]
    shape, seed, o = X.shape[1:], task["seed"], task["options"]
    n_classes = len(task["class_names"])
    Xf, yf = training_set(task["regime"], X.reshape(len(X), -1), y, seed=seed, cap=task["cap"], grow=task["grow"],
                          options=task["augment"], n_channels=shape[0])
    out = {}
    if task["model"] in ("attention", "latent_cnn"):
        torch.manual_seed(seed)
        net = (LatentAttention(shape, n_classes, patch=o["patch"], dim=o["dim"], depth=o["depth"], heads=o["heads"],
                               stem=o["stem"]) if task["model"] == "attention" else
               VGGNet(n_classes, width=o["width"], in_channels=shape[0]))

        def fit():
            _fit_net(net, Xf.reshape(-1, *shape), yf, o, seed, device, n_classes)
            return lambda: predict(net, X_test, device=device)
    else:
        clf = make_classifier(task["model"], o, random_state=seed)

        def fit():
            clf.fit(Xf, yf)
            return lambda: clf.predict(X_test.reshape(len(X_test), -1))

    pred, seconds = timed_fit(fit)
    out["row"] = result_row(task["model"], "latents", task["regime"].name, seed, task["y_test"], pred,
                            task["class_names"], n_train=len(yf), seconds=seconds)
    out["pred"] = pred
    if task.get("maps") and task["model"] == "attention":
        out["maps"] = net.cls_attention(torch.as_tensor(X_test, dtype=torch.float32).to(device)).cpu().numpy()
    return out


def pixel_task(task: dict) -> dict:
    """One CNN fit: ``task``: model (a PIXEL_NETS family), options (width, steps, batch_size, lr), input
    (pixels | reconstructed), seed, images / y (training images, uint8 NHWC), test_images / y_test,
    class_names, threads, device. Always tested on the original test images."""
    import torch

    from pipeline.models.classifier_nets import PIXEL_NETS, images_to_input, predict

    torch.set_num_threads(task["threads"])
    device = task.get("device", "cpu")
    o, seed = task["options"], task["seed"]
    torch.manual_seed(seed)
    net = PIXEL_NETS[task["model"]](len(task["class_names"]), width=o["width"])
    x = images_to_input(task["images"])

    def fit():
        _fit_net(net, x, task["y"], o, seed, device, len(task["class_names"]))
        return lambda: predict(net, images_to_input(task["test_images"]), device=device)

    pred, seconds = timed_fit(fit)
    return {"row": result_row(task["model"], task["input"], "real", seed, task["y_test"], pred, task["class_names"],
                              n_train=len(x), seconds=seconds), "pred": pred}
