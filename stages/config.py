"""The params.yaml schema: one pydantic model per section, every key required and typed.

``params.yaml`` is the single place defaults live (DVC tracks it), so no field here has a
default: a missing, unknown, mistyped or out-of-range key stops a stage before any work,
with an error that names the key. pydantic does this validation (types, ranges, unknown
keys, a readable path to the bad key) better than hand-written checks.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

# The library's registry names, spelled out so that validating params imports neither torch,
# diffusers nor scikit-learn (a light stage such as compare starts in well under a second).
# tests/test_config_and_dvc.py checks each tuple against the registry it mirrors.
CLASS_NAMES = ("circle", "square", "triangle", "star", "cross", "ring", "hexagon")  # pipeline.data.shapes
ARTIFACT_KINDS = ("blur", "noise", "jpeg", "banding", "warp", "patch")  # pipeline.data.artifacts
SCHEDULERS = ("ddpm", "ddim", "euler", "dpmsolver")  # pipeline.latents.noising
METHODS = ("gaussian", "lerp", "slerp", "smote", "borderline_smote", "adasyn", "inversion", "random")  # pipeline.augment
GENERATED = ("class_guided", "guided_interpolation")  # pipeline.generate.oversample (latents the U-Net makes)
CLASSIFIERS = ("logreg", "linear_svm", "rbf_svm", "rf", "knn", "hgb")  # pipeline.classify.estimators

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
# A Hub revision: a 40-hex commit (reproducible) or a branch / ref name such as main, refs/convert/parquet
Revision = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9_.-]+)*$")]
PositiveInt = Annotated[int, Field(gt=0)]


def _unique_nonempty(v: list) -> list:
    if not v or len(set(v)) != len(v):
        raise ValueError("must be a non-empty list without repeats")
    return v


def _unique(v: list) -> list:
    if len(set(v)) != len(v):
        raise ValueError("must not repeat an entry")
    return v


def UniqueList(item, min_length: int = 1):  # noqa: N802 - reads as a type in the models below
    return Annotated[list[item], AfterValidator(_unique_nonempty if min_length else _unique)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Base(Section):
    seed: Annotated[int, Field(ge=0)]
    device: Literal["auto", "cpu", "cuda"]
    recipes: Literal["geometry", "as_written"]   # pipeline.recipes: scale the model recipes to the latent side


DATA_SOURCES = ("shapes", "emoji", "digits", "diffusiondb")
DIFFUSIONDB_LABELS = ("artifact_bucket", "rating_bucket", "sampler")  # pipeline.data.diffusiondb.LABELS


class Data(Section):
    source: Literal[DATA_SOURCES]
    path: str                # diffusiondb: local parquet file/directory instead of the Hub ("" = Hub)
    ratings_path: str        # diffusiondb: local ratings parquet instead of the Hub ("" = Hub)
    hub_config: Annotated[str, Field(min_length=1, max_length=96, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]   # one folder name
    revision: Revision          # diffusiondb: the parquet conversion's commit (or branch) on the Hub
    ratings_revision: Revision  # diffusiondb: the ratings export's commit (or branch): a daily export
    label: Literal[("class",) + DIFFUSIONDB_LABELS]
    min_ratings: PositiveInt
    drop_anonymous: bool
    max_bad_fraction: Fraction
    size: Annotated[int, Field(ge=16, le=1024)]
    n_images: Annotated[int, Field(ge=20)]
    class_weights: list[Annotated[float, Field(gt=0)]]
    test_fraction: Annotated[float, Field(gt=0.0, lt=1.0)]
    n_artifact: Annotated[int, Field(ge=12)]
    artifact_kinds: UniqueList(Literal[ARTIFACT_KINDS])
    artifact_test_fraction: Annotated[float, Field(gt=0.0, lt=1.0)]
    texture_prob: Fraction
    distractor_prob: Fraction
    scale_range: Annotated[list[Annotated[float, Field(gt=0.0, le=0.5)]], Field(min_length=2, max_length=2)]
    position_jitter: Fraction
    min_contrast: Annotated[float, Field(ge=0.0, le=441.0)]
    rows_per_shard: PositiveInt

    @field_validator("class_weights")
    @classmethod
    def _n_classes(cls, v):
        if not 2 <= len(v) <= len(CLASS_NAMES):
            raise ValueError(f"needs 2..{len(CLASS_NAMES)} weights (one per class of {list(CLASS_NAMES)}), got {len(v)}")
        return v

    @field_validator("scale_range")
    @classmethod
    def _ordered(cls, v):
        if v[0] > v[1]:
            raise ValueError(f"needs [min, max] with min <= max, got {v}")
        return v

    @model_validator(mode="after")
    def _source_keys(self):
        if self.source == "diffusiondb":
            if self.label == "class":
                raise ValueError(f"data.label: DiffusionDB has no native class; pick one of {list(DIFFUSIONDB_LABELS)}")
        else:
            if self.label != "class":
                raise ValueError(f"data.label {self.label!r} is for data.source diffusiondb; {self.source} uses 'class'")
            set_keys = [k for k in ("path", "ratings_path") if getattr(self, k)]
            if set_keys:
                raise ValueError(f"data.{', data.'.join(set_keys)} only apply to data.source diffusiondb (set them to \"\")")
        return self


# Hub VAEs known to downsample 8× (the presets' and the README's): their latent side is data.size / 8
SD_FAMILY = frozenset(i.lower() for i in (
    "stabilityai/sd-vae-ft-mse", "stabilityai/sd-vae-ft-ema", "madebyollin/taesd", "madebyollin/taesdxl",
    "CompVis/stable-diffusion-v1-4", "runwayml/stable-diffusion-v1-5", "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "stabilityai/stable-diffusion-2-1", "stabilityai/stable-diffusion-2-1-base", "stabilityai/sdxl-vae",
    "madebyollin/sdxl-vae-fp16-fix", "stabilityai/stable-diffusion-xl-base-1.0"))
HUB_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$"   # owner/name, as the Hub allows


class Vae(Section):
    source: Literal["train", "pretrained"]
    id: str
    revision: Revision   # pretrained from the Hub: a commit hash (or branch); unused for a local directory
    kind: Literal["kl", "tiny"]
    subfolder: Annotated[str, Field(max_length=200, pattern=r"^([A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*)?$")]
    dtype: Literal["float32", "float16", "bfloat16"]
    tiling: Literal["auto", "on", "off"]
    preview: Literal["auto", "fitted", "sd15"]
    block_out_channels: list[PositiveInt]
    layers_per_block: PositiveInt
    norm_num_groups: PositiveInt
    steps: PositiveInt
    batch_size: PositiveInt
    lr: Annotated[float, Field(gt=0.0, lt=1.0)]
    kl_weight: Annotated[float, Field(ge=0.0)]

    @model_validator(mode="after")
    def _consistent(self):
        if self.source == "pretrained" and not self.id:
            raise ValueError("vae.id (hub id or local directory) is required when vae.source is 'pretrained'")
        if self.id and not Path(self.id).is_dir() and not re.match(HUB_ID, self.id):
            raise ValueError(f"vae.id {self.id!r} is neither a local directory nor a Hub id (owner/name)")
        if ".." in self.subfolder.split("/"):
            raise ValueError(f"vae.subfolder {self.subfolder!r} must stay inside the model folder (no '..')")
        if self.source == "train":
            if self.kind != "kl":
                raise ValueError("vae.source 'train' trains an AutoencoderKL: set vae.kind to 'kl'")
            if not 1 <= len(self.block_out_channels) <= 4:
                raise ValueError("block_out_channels needs 1..4 entries")
            bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
            if bad:
                raise ValueError(f"block_out_channels {bad} are not multiples of norm_num_groups={self.norm_num_groups}")
        return self


class RayEngine(Section):
    """Where and how a stage with ``engine: ray`` runs its Ray Data work."""

    address: str                                     # "" = $RAY_ADDRESS, else a local cluster the stage starts
    num_cpus: Annotated[int, Field(ge=0)]            # local cluster: CPUs (0 = every core)
    object_store_mb: Annotated[int, Field(ge=0)]     # local cluster: object store (0 = Ray's default)
    actors: PositiveInt                              # model actors (map_batches concurrency)
    cpus_per_actor: Annotated[float, Field(gt=0)]
    gpus_per_actor: Annotated[float, Field(ge=0)]

    @model_validator(mode="after")
    def _fits(self):
        if self.num_cpus and self.actors * self.cpus_per_actor > self.num_cpus:
            raise ValueError(f"actors × cpus_per_actor = {self.actors * self.cpus_per_actor:g} CPUs exceeds num_cpus "
                             f"{self.num_cpus}: the actors could never all start")
        return self


class Encode(Section):
    batch_size: PositiveInt
    sample: bool
    grid_size: Annotated[int, Field(ge=1, le=64)]
    engine: Literal["local", "ray"]
    ray: RayEngine

    @model_validator(mode="after")
    def _engine(self):
        if self.engine == "ray" and self.sample:
            raise ValueError("sample: true draws one seeded noise stream in row order, which only engine: local keeps")
        return self


NoisyFraction = Annotated[float, Field(gt=0.0, le=1.0)]


class Noise(Section):
    schedulers: UniqueList(Literal[SCHEDULERS])
    t_fracs: UniqueList(NoisyFraction)
    heldout_fracs: UniqueList(NoisyFraction, min_length=0)
    num_inference_steps: Annotated[int, Field(ge=2, le=1000)]

    @model_validator(mode="after")
    def _levels(self):
        if len(self.t_fracs) < 2:
            raise ValueError("t_fracs needs at least two noise levels (the cross-level models interpolate between them)")
        if set(self.t_fracs) & set(self.heldout_fracs):
            raise ValueError(f"heldout_fracs {self.heldout_fracs} must not repeat a training level of t_fracs")
        lo, hi = min(self.t_fracs), max(self.t_fracs)
        outside = [f for f in self.heldout_fracs if not lo < f < hi]
        if outside:
            raise ValueError(f"heldout_fracs {outside} lie outside the t_fracs range ({lo}, {hi}): held-out levels test interpolation")
        return self


class GaussianOptions(Section):
    sigma: Annotated[float, Field(gt=0.0, le=10.0)]


class InterpolationOptions(Section):
    lambda_min: Fraction
    lambda_max: Fraction

    @model_validator(mode="after")
    def _ordered(self):
        if self.lambda_min > self.lambda_max:
            raise ValueError(f"lambda_min ({self.lambda_min}) must not exceed lambda_max ({self.lambda_max})")
        return self


class SmoteOptions(Section):
    k_neighbors: PositiveInt


class BorderlineSmoteOptions(Section):
    k_neighbors: PositiveInt
    m_neighbors: PositiveInt
    kind: Literal["borderline-1", "borderline-2"]


class AdasynOptions(Section):
    n_neighbors: PositiveInt


class InversionOptions(Section):
    C: Annotated[float, Field(gt=0.0)]
    margin: Annotated[float, Field(ge=0.0)]
    max_shift: Annotated[float, Field(gt=0.0)]


class RandomOptions(Section):
    """Random over-sampling (copies of real samples) has no options: the re-balancing reference."""


class ClassGuidedOptions(Section):   # its scale: the one the guide stage chose on validation (models/guide/classifier)
    steps: Annotated[int, Field(ge=1, le=1000)]


class GuidedInterpolationOptions(InterpolationOptions):
    steps: Annotated[int, Field(ge=1, le=1000)]
    strength: Fraction


class Augment(Section):
    sampling_strategy: Literal["auto", "minority", "not majority", "all"]
    replicates: Annotated[int, Field(ge=1, le=20)]
    gaussian: GaussianOptions
    lerp: InterpolationOptions
    slerp: InterpolationOptions
    smote: SmoteOptions
    borderline_smote: BorderlineSmoteOptions
    adasyn: AdasynOptions
    inversion: InversionOptions
    random: RandomOptions
    class_guided: ClassGuidedOptions
    guided_interpolation: GuidedInterpolationOptions

    def options(self, method: str) -> dict:
        """The keyword options of one method's sampler (its ``augment.<method>`` subsection)."""
        return getattr(self, method).model_dump()


class Fidelity(Section):
    components: Annotated[int, Field(ge=2)]
    k: PositiveInt
    gallery_size: Annotated[int, Field(ge=1, le=256)]
    tsne_points: Annotated[int, Field(ge=10)]
    tsne_perplexity: Annotated[float, Field(gt=1.0)]


class Compare(Section):
    methods: UniqueList(Literal[METHODS])


class Analyze(Section):
    worst_k: Annotated[int, Field(ge=1, le=64)]
    edge_threshold: Annotated[float, Field(gt=0.0)]
    tsne_points: Annotated[int, Field(ge=10)]
    tsne_perplexity: Annotated[float, Field(gt=1.0)]
    probe_C: Annotated[float, Field(gt=0.0)]
    silhouette_points: Annotated[int, Field(ge=10)]
    pairs: Annotated[int, Field(ge=1, le=16)]
    path_steps: Annotated[int, Field(ge=3, le=64)]
    sigmas: UniqueList(Annotated[float, Field(ge=0.0)])
    perturb_images: Annotated[int, Field(ge=1)]
    preview_images: Annotated[int, Field(ge=1, le=64)]


REGIME_KINDS = ("real", "augmented", "synthetic", "low_data", "low_data_augmented")  # pipeline.classify.regimes
Regimes = UniqueList(Literal[REGIME_KINDS])


class COptions(Section):
    C: Annotated[float, Field(gt=0.0)]
    regimes: Regimes


class LogregOptions(Section):
    C: Annotated[float, Field(gt=0.0)]
    max_iter: PositiveInt
    regimes: Regimes


class RbfSvmOptions(Section):
    C: Annotated[float, Field(gt=0.0)]
    gamma: Literal["scale", "auto"] | Annotated[float, Field(gt=0.0)]
    regimes: Regimes


class RfOptions(Section):
    trees: PositiveInt
    max_features: Literal["sqrt", "log2"] | Annotated[float, Field(gt=0.0, le=1.0)]
    regimes: Regimes


class KnnOptions(Section):
    neighbors: PositiveInt
    regimes: Regimes


class HgbOptions(Section):
    max_iter: PositiveInt
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)]
    max_leaf_nodes: Annotated[int, Field(ge=2)]
    regimes: Regimes


AUGMENTATIONS = ("none", "flip", "dihedral")   # pipeline.classify.nets.AUGMENTATIONS


class NetRecipe(Section):
    steps: PositiveInt
    batch_size: PositiveInt
    lr: Annotated[float, Field(gt=0.0, le=1.0)]
    augment: Literal[AUGMENTATIONS]
    class_weight: bool


class AttentionOptions(NetRecipe):
    patch: PositiveInt
    dim: PositiveInt
    depth: PositiveInt
    heads: PositiveInt
    stem: Annotated[int, Field(ge=0, le=4)]
    regimes: Regimes

    @model_validator(mode="after")
    def _heads(self):
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be a multiple of heads ({self.heads})")
        return self


class LatentCnnOptions(NetRecipe):
    width: PositiveInt
    regimes: Regimes


class CnnOptions(NetRecipe):   # one per pixel family: bench.vgg, bench.resnet, bench.mobilenet
    width: PositiveInt


LATENT_MODELS = CLASSIFIERS + ("latent_cnn", "attention")
PIXEL_MODELS = ("vgg", "resnet", "mobilenet")  # pipeline.classify.nets.PIXEL_NETS


class Bench(Section):
    seeds: Annotated[int, Field(ge=1, le=20)]
    workers: Annotated[int, Field(ge=0, le=64)]
    latent_models: UniqueList(Literal[LATENT_MODELS], min_length=0)
    pixel_models: UniqueList(Literal[PIXEL_MODELS], min_length=0)
    pixel_inputs: UniqueList(Literal[("pixels", "reconstructed")])
    methods: UniqueList(Literal[METHODS + GENERATED], min_length=0)
    generated_regimes: UniqueList(Literal[REGIME_KINDS[1:]], min_length=0)
    low_data_per_class: Annotated[int, Field(ge=2)]
    low_data_grow: Annotated[int, Field(ge=2, le=20)]
    gallery_per_class: Annotated[int, Field(ge=1, le=8)]
    logreg: LogregOptions
    linear_svm: COptions
    rbf_svm: RbfSvmOptions
    rf: RfOptions
    knn: KnnOptions
    hgb: HgbOptions
    latent_cnn: LatentCnnOptions
    attention: AttentionOptions
    vgg: CnnOptions
    resnet: CnnOptions
    mobilenet: CnnOptions

    @model_validator(mode="after")
    def _consistent(self):
        if not self.latent_models and not self.pixel_models:
            raise ValueError("latent_models and pixel_models are both empty: nothing to benchmark")
        for model in self.latent_models:
            needs = {"augmented", "synthetic", "low_data_augmented"} & set(getattr(self, model).regimes)
            if needs and not self.methods:
                raise ValueError(f"bench.{model}.regimes {sorted(needs)} need at least one entry in bench.methods")
        return self

    def regimes(self, model: str) -> list[str]:
        """The regime kinds a latent model is trained in (its ``bench.<model>.regimes``)."""
        return list(getattr(self, model).regimes)

    def options(self, model: str) -> dict:
        """A model's own options: its ``bench.<model>`` subsection without ``regimes``."""
        return {k: v for k, v in getattr(self, model).model_dump().items() if k != "regimes"}


class Score(Section):
    seeds: Annotated[int, Field(ge=1, le=20)]
    workers: Annotated[int, Field(ge=0, le=64)]
    ridge_alpha: Annotated[float, Field(gt=0.0)]
    mlp_hidden: Annotated[list[PositiveInt], Field(min_length=1)]
    cnn_channels: Annotated[list[PositiveInt], Field(min_length=1)]
    t_dim: Annotated[int, Field(ge=2, le=512)]
    level_steps: PositiveInt
    cond_steps: PositiveInt
    batch_size: PositiveInt
    lr: Annotated[float, Field(gt=0.0, le=1.0)]
    level_models: UniqueList(Literal[("ridge", "mlp", "cnn")])
    expert_model: Literal[("mlp", "cnn", "none")]
    rgb_models: UniqueList(Literal[("ridge", "mlp", "cnn")], min_length=0)
    severe_at: Annotated[float, Field(gt=0.0, le=5.0)]
    exit_model: Literal[("cnn_t", "mixture")]
    exit_min_checks: Annotated[int, Field(ge=1)]
    exit_max_false_stop: Annotated[float, Field(gt=0.0, lt=1.0)]
    exit_delta: Annotated[float, Field(gt=0.0, lt=0.5)]
    exit_from: Annotated[float, Field(gt=0.0, le=1.0)]
    engine: Literal["local", "ray"]
    ray: RayEngine

    @model_validator(mode="after")
    def _exit_model_exists(self):
        if self.exit_model == "mixture" and self.expert_model == "none":
            raise ValueError("score.exit_model 'mixture' needs score.expert_model mlp or cnn (it is 'none': no mixture is built)")
        return self


GUIDE_METRICS = ("latent", "pixels")   # pipeline.generate.interpolate.GUIDE_METRICS


class Diffusion(Section):
    block_out_channels: Annotated[list[PositiveInt], Field(min_length=1, max_length=4)]
    layers_per_block: PositiveInt
    norm_num_groups: PositiveInt
    steps: PositiveInt
    batch_size: PositiveInt
    lr: Annotated[float, Field(gt=0.0, lt=1.0)]
    noise_offset: Annotated[float, Field(ge=0.0, le=1.0)]
    samplers: UniqueList(Literal[SCHEDULERS])
    sample_steps: UniqueList(Annotated[int, Field(ge=2, le=1000)])
    samples: Annotated[int, Field(ge=16)]
    seeds: Annotated[int, Field(ge=1, le=20)]
    components: Annotated[int, Field(ge=2)]
    k: Annotated[int, Field(ge=1, le=50)]
    gallery: Annotated[int, Field(ge=1, le=64)]
    trajectory_samples: Annotated[int, Field(ge=1, le=64)]
    trajectory_points: Annotated[int, Field(ge=2, le=50)]

    @model_validator(mode="after")
    def _widths(self):
        bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
        if bad:
            raise ValueError(f"block_out_channels {bad} are not multiples of norm_num_groups={self.norm_num_groups}")
        if self.samples < self.k + 2:
            raise ValueError(f"samples ({self.samples}) must be at least k + 2 = {self.k + 2}")
        return self


class InterpolateValidation(Section):
    fraction: Annotated[float, Field(gt=0.0, le=0.5)]
    seeds: Annotated[int, Field(ge=1, le=20)]
    pairs: Annotated[int, Field(ge=2)]


class Interpolate(Section):
    pairs: Annotated[int, Field(ge=2)]
    points: Annotated[int, Field(ge=1, le=32)]
    steps: Annotated[int, Field(ge=2, le=1000)]
    strengths: UniqueList(Annotated[float, Field(ge=0.0, le=1.0)], min_length=1)
    metric: Literal[GUIDE_METRICS]
    seeds: Annotated[int, Field(ge=1, le=20)]
    validation: InterpolateValidation
    strips: Annotated[int, Field(ge=1, le=32)]


class FreshRuns(Section):
    train: Annotated[int, Field(ge=2)]
    calibration: Annotated[int, Field(ge=10)]
    test: Annotated[int, Field(ge=10)]
    steps: Annotated[int, Field(ge=2, le=1000)]
    checks: UniqueList(NoisyFraction)

    @field_validator("checks")
    @classmethod
    def _descending(cls, v):
        if list(v) != sorted(v, reverse=True):
            raise ValueError(f"list the check levels from noise towards the image (descending t/T), got {list(v)}")
        return v


class Judge(Section):
    channels: Annotated[list[PositiveInt], Field(min_length=1, max_length=4)]
    steps: PositiveInt
    batch_size: PositiveInt
    lr: Annotated[float, Field(gt=0.0, le=1.0)]


class ArtifactUnet(Section):
    steps: PositiveInt


class Runs(Section):
    fresh: FreshRuns
    judge: Judge
    inversion_images: Annotated[int, Field(ge=0)]
    batch_size: PositiveInt
    engine: Literal["local", "ray"]
    ray: RayEngine


Scale = Annotated[float, Field(gt=0.0, le=1000.0)]   # 0 would be unguided sampling, which every study has


class GuideScales(Section):   # pipeline.generate.guided.GUIDES: candidates, the operating one chosen on validation
    classifier: UniqueList(Scale, min_length=1)
    discriminator: UniqueList(Scale, min_length=1)
    ood: UniqueList(Scale, min_length=1)


class GuideValidation(Section):
    fraction: Annotated[float, Field(gt=0.0, le=0.5)]
    seeds: Annotated[int, Field(ge=1, le=20)]
    max_frechet_ratio: Annotated[float, Field(ge=1.0, le=100.0)]


class Guide(Section):
    sampler: Literal[SCHEDULERS]
    steps: Annotated[int, Field(ge=2, le=1000)]
    samples_per_class: Annotated[int, Field(ge=2)]
    seeds: Annotated[int, Field(ge=1, le=20)]
    channels: Annotated[list[PositiveInt], Field(min_length=1, max_length=4)]
    t_dim: Annotated[int, Field(ge=2, le=512)]
    classifier_steps: PositiveInt
    discriminator_steps: PositiveInt
    generated: Annotated[int, Field(ge=16)]
    batch_size: PositiveInt
    lr: Annotated[float, Field(gt=0.0, lt=1.0)]
    symmetry: Literal[AUGMENTATIONS]
    normalise: bool
    scales: GuideScales
    validation: GuideValidation
    ood_other: Literal[("digits", "shapes")]
    ood_images: Annotated[int, Field(ge=16)]
    gallery_per_class: Annotated[int, Field(ge=1, le=16)]


STUDY_BASELINES = ("none", "class_weights")   # pipeline.study.fits.BASELINES


class Study(Section):   # the cross-dataset study (stages study_baselines, study@<method>, study_table; docs/study.md)
    sources: UniqueList(Literal[DATA_SOURCES])
    shots: UniqueList(Annotated[int, Field(ge=1)] | Literal["all"])
    imbalance: UniqueList(Annotated[int, Field(ge=2)] | Literal["own"])
    methods: UniqueList(Literal[METHODS + GENERATED])
    models: UniqueList(Literal[LATENT_MODELS])
    recipes: dict[Literal[LATENT_MODELS], dict[str, int | float | str | bool]]
    seeds: Annotated[int, Field(ge=2, le=50)]
    fill: Annotated[int, Field(ge=2)]
    cas_model: Literal[LATENT_MODELS]
    components: Annotated[int, Field(ge=2, le=256)]
    draws: Annotated[int, Field(ge=100)]
    workers: Annotated[int, Field(ge=0, le=64)]

    @model_validator(mode="after")
    def _consistent(self):
        if "random" not in self.methods:
            raise ValueError("methods must include random: random over-sampling is the re-balancing reference every "
                             "method is compared with")
        if self.cas_model not in self.models:
            raise ValueError(f"cas_model {self.cas_model} is not one of models {self.models}")
        return self


class Params(Section):
    base: Base
    data: Data
    vae: Vae
    encode: Encode
    noise: Noise
    analyze: Analyze
    augment: Augment
    fidelity: Fidelity
    compare: Compare
    bench: Bench
    score: Score
    diffusion: Diffusion
    interpolate: Interpolate
    artifact_unet: ArtifactUnet
    runs: Runs
    guide: Guide
    study: Study

    def latent_side(self) -> int | None:
        """The latent side the params imply, where they fix it: the trained VAE's (data.size / 2^(blocks-1)),
        or a Hub VAE known to downsample 8× (``SD_FAMILY``); else None (a local directory: the encode stage checks)."""
        if self.vae.source == "train":
            return self.data.size // 2 ** (len(self.vae.block_out_channels) - 1)
        if self.vae.id.lower() in SD_FAMILY:
            return self.data.size // 8
        return None

    @model_validator(mode="after")
    def _geometry(self):
        """Combinations of presets (conf/) and keys that cannot run, stopped before any stage works."""
        from pipeline.recipes import Geometry   # standard library only

        size, side = self.data.size, self.latent_side()
        if side is None:
            return self
        if self.vae.source == "train":
            factor = 2 ** (len(self.vae.block_out_channels) - 1)
            if size % factor:
                raise ValueError(f"data.size {size} is not a multiple of the trained VAE's downsampling {factor} "
                                 f"(vae.block_out_channels {self.vae.block_out_channels})")
            if side > 64:
                raise ValueError(f"data.size {size} through the trained VAE ({factor}× downsampling) gives {side}×{side} "
                                 "latents; the recipes go up to 64×64: use SD's VAE (-S vae=sd or -S vae=taesd, 8×) "
                                 "or lower data.size")
        else:
            if size % 8 or side < 8:
                raise ValueError(f"data.size {size} through {self.vae.id} (8× downsampling) gives "
                                 f"{size / 8:g}×{size / 8:g} latents: it needs a multiple of 8, at least 64 "
                                 "(-S data.size=256)")
        geo = Geometry.of(side, size, follow=self.base.recipes == "geometry")
        blocks = geo.blocks(self.diffusion.block_out_channels)
        if side % 2 ** (len(blocks) - 1):
            raise ValueError(f"latents of side {side} (data.size {size}) cannot be halved {len(blocks) - 1} times by the "
                             f"U-Net's blocks {blocks} (diffusion.block_out_channels, scaled to the side): pick a data.size "
                             "whose latent side is divisible by that")
        patch = geo.patch(self.bench.attention.patch)
        if side % patch:
            raise ValueError(f"bench.attention.patch {patch} (scaled to the side) does not divide the latent side {side} "
                             f"(data.size {size})")
        return self

    @model_validator(mode="after")
    def _enough_samples(self):
        """Sets the k-NN manifold metrics (diffusion.k) compare must hold at least k + 2 samples."""
        need = self.diffusion.k + 2
        for key, n in (("interpolate.pairs × interpolate.points", self.interpolate.pairs * self.interpolate.points),
                       ("interpolate.validation.pairs × interpolate.points",
                        self.interpolate.validation.pairs * self.interpolate.points)):
            if n < need:
                raise ValueError(f"{key} = {n} interior samples: the k-NN metrics need at least diffusion.k + 2 = {need}")
        return self

    @model_validator(mode="after")
    def _study_recipes(self):
        """Each model of study.models has a whole recipe in study.recipes: the keys of bench.<model> but
        regimes and class_weight (the study sets it per method), of their types."""
        for model in self.study.models:
            if model not in self.study.recipes:
                raise ValueError(f"study.recipes has no {model} (study.models): give the keys of bench.{model} "
                                 "but regimes and class_weight")
        for model, recipe in self.study.recipes.items():
            kind = type(getattr(self.bench, model))
            fields = set(kind.model_fields) - {"regimes", "class_weight"}
            unknown, missing = sorted(set(recipe) - fields), sorted(fields - set(recipe))
            if unknown or missing:
                raise ValueError(f"study.recipes.{model}: " + "; ".join(
                    ([f"unknown {', '.join(unknown)}"] if unknown else []) + ([f"missing {', '.join(missing)}"] if missing else [])))
            extra = {k: v for k, v in (("regimes", ["real"]), ("class_weight", False)) if k in kind.model_fields}
            try:
                kind.model_validate({**recipe, **extra})
            except ValidationError as exc:
                bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise ValueError(f"study.recipes.{model}: {bad}") from None
        return self

    @model_validator(mode="after")
    def _gpus(self):
        for name in ("encode", "runs", "score"):
            section = getattr(self, name)
            if self.base.device == "cuda" and section.engine == "ray" and section.ray.gpus_per_actor == 0:
                raise ValueError(f"{name}.ray.gpus_per_actor is 0 but base.device is cuda: Ray actors see a GPU only "
                                 "when they ask for one")
        if not any(f >= self.score.exit_from for f in self.runs.fresh.checks):
            raise ValueError(f"score.exit_from={self.score.exit_from} leaves no check of runs.fresh.checks "
                             f"{self.runs.fresh.checks} to stop at")
        return self


class ParamsError(ValueError):
    """params.yaml is missing, unreadable or fails validation; the message names each bad key."""


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate the whole params file (every stage fails fast on any bad key)."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found (run from the project root)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "<top level>"
            got = "" if err["type"] == "missing" or not err["loc"] else f" (got {err['input']!r})"   # not the whole file
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  {key}: {msg}{got}")
        raise ParamsError(f"{path}: invalid params:\n" + "\n".join(lines)) from None
