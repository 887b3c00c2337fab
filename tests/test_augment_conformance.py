"""imbalanced-learn's own common checks over every augmenter that can be built standalone.

Left out, with the reason: ``GuidedInterpolation`` and ``ClassGuided`` (pipeline.generate.oversample)
take rows of a trained U-Net's latent shape (C·H·W of the diffusion model, and a classifier with the
benchmark's classes), so the checks' 20-feature, 3-class dataset cannot go through them; they share
:class:`~pipeline.augment.base.LatentOverSampler` with the rest and are tested on real latents in
tests/test_generate.py. SMOTE, BorderlineSMOTE, ADASYN and RandomOverSampler are imbalanced-learn's
own, checked by imbalanced-learn.

Checks expected to fail, each with its reason (:func:`expected_failures`): none of our samplers
takes sparse input (their tags say so, so the plain sparse check is not run), and a sparse pandas
frame is sparse input all the same; ``GaussianJitter`` keeps the latent channel layout (features a
multiple of ``n_channels``), which the checks' 2- and 3-feature datasets are not.
"""

import numpy as np
import pytest
from imblearn.over_sampling import SMOTE
from imblearn.utils.estimator_checks import parametrize_with_checks
from scipy import sparse

from pipeline.augment import make_composed
from pipeline.augment.compose import Composed
from pipeline.augment.gaussian import GaussianJitter
from pipeline.augment.interpolation import Interpolation
from pipeline.augment.inversion import LinearInversion

AUGMENTERS = [
    GaussianJitter(n_channels=4, random_state=0),
    GaussianJitter(n_channels=1, random_state=0),
    Interpolation(kind="lerp", random_state=0),
    Interpolation(kind="slerp", random_state=0),
    LinearInversion(random_state=0),
    Composed([("gaussian", GaussianJitter(n_channels=4)), ("smote", SMOTE())], random_state=0),
]


SPARSE = "sparse input is refused: latents are dense (LatentOverSampler)"
CHANNELS = "features must be a multiple of n_channels (the latent channel layout); this check has 2 or 3"


def expected_failures(estimator) -> dict[str, str]:
    out = {"check_samplers_pandas_sparse": SPARSE}
    if any(isinstance(s, GaussianJitter) and s.n_channels > 1
           for s in [estimator, *(s for _, s in getattr(estimator, "samplers", []))]):
        out.update(dict.fromkeys(["check_samplers_fit", "check_sampler_get_feature_names_out",
                                  "check_sampler_get_feature_names_out_pandas"], CHANNELS))
    return out


@parametrize_with_checks(AUGMENTERS, expected_failed_checks=expected_failures)
def test_imblearn_common_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("sampler", AUGMENTERS, ids=lambda s: type(s).__name__)
def test_sparse_input_is_refused_in_one_line(sampler):
    X, y = np.random.default_rng(0).normal(size=(30, 8)), np.repeat([0, 1], [20, 10])
    with pytest.raises(TypeError, match="dense data is required"):
        sampler.fit_resample(sparse.csr_matrix(X), y)


def test_composed_random_state_reproduces_the_set_and_none_keeps_each_samplers_own():
    X, y = np.random.default_rng(0).normal(size=(60, 8)), np.repeat([0, 1, 2], [40, 12, 8])
    a = Composed([("g", GaussianJitter()), ("s", SMOTE())], random_state=3).fit_resample(X, y)[0]
    b = Composed([("g", GaussianJitter()), ("s", SMOTE())], random_state=3).fit_resample(X, y)[0]
    c = Composed([("g", GaussianJitter()), ("s", SMOTE())], random_state=4).fit_resample(X, y)[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    built = make_composed(["gaussian", "smote"], {"gaussian": {}, "smote": {}}, random_state=5)
    assert built.random_state is None and all(s.random_state == 5 for _, s in built.samplers)
