import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from diffusers import AutoencoderTiny

from pipeline.io import InputError
from pipeline.latents.noising import (
    add_noise,
    alpha_bar,
    make_scheduler,
    oracle_trajectory,
    timestep_for_fraction,
)
from pipeline.latents.store import (
    LatentSplitWriter,
    iter_latent_batches,
    iter_latent_split,
    latent_split_facts,
    read_latent_split,
    write_latent_split,
)
from pipeline.latents.vae import (
    build_vae,
    decode_latents,
    encode_batches,
    encode_images,
    fit_scaling_factor,
    images_to_tensor,
    load_saved_vae,
    tensor_to_images,
    train_vae,
)


def test_latent_store_roundtrip_keeps_shape_and_scaling_factor(tmp_path):
    z = np.random.default_rng(0).standard_normal((7, 4, 3, 3)).astype(np.float32)
    meta = pd.DataFrame({"id": list("abcdefg"), "label": np.arange(7)})
    write_latent_split(tmp_path, "train", z, meta, scaling_factor=0.5, info={"vae": "x"}, rows_per_shard=3)
    assert len(list(tmp_path.glob("train-*.parquet"))) == 3
    back = read_latent_split(tmp_path, "train")
    assert np.array_equal(back.latents, z) and back.shape == (4, 3, 3)
    assert back.scaling_factor == 0.5 and back.info == {"vae": "x"}
    assert back.meta["id"].tolist() == list("abcdefg")
    # any parquet reader sees a plain table with one fixed-size list column
    assert pq.read_table(tmp_path / "train-00000.parquet").column("latent").type.list_size == 36


def test_a_streamed_split_writes_the_same_files_as_the_whole_split(tmp_path):
    z = np.random.default_rng(0).standard_normal((10, 4, 2, 2)).astype(np.float32)
    meta = pd.DataFrame({"id": [f"r{i}" for i in range(10)], "label": np.arange(10, dtype=np.int16),
                         "severity": np.linspace(0, 5, 10, dtype=np.float32)})
    write_latent_split(tmp_path / "whole", "train", z, meta, scaling_factor=0.5, info={"k": 1}, rows_per_shard=4)
    with LatentSplitWriter(tmp_path / "streamed", "train", scaling_factor=0.5, info={"k": 1}, rows_per_shard=4) as w:
        for start, stop in ((0, 3), (3, 3), (3, 9), (9, 10)):                   # uneven pieces, one empty
            w.append(z[start:stop], meta.iloc[start:stop])
    names = sorted(p.name for p in (tmp_path / "whole").iterdir())
    assert names == ["train-00000.parquet", "train-00001.parquet", "train-00002.parquet"] == [p.name for p in w.paths]
    for name in names:                                                           # byte for byte
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "streamed" / name).read_bytes()
    parts = list(iter_latent_split(tmp_path / "streamed", "train"))
    assert [len(p.latents) for p in parts] == [4, 4, 2] and np.array_equal(np.concatenate([p.latents for p in parts]), z)
    assert parts[0].scaling_factor == 0.5 and parts[2].meta["id"].tolist() == ["r8", "r9"]
    with pytest.raises(ValueError, match="after"):
        w.append(np.zeros((1, 4, 3, 3), np.float32), meta.iloc[:1])
    with pytest.raises(ValueError, match="nothing was appended"):
        LatentSplitWriter(tmp_path / "none", "train", scaling_factor=1.0).close()


@pytest.mark.parametrize("batch, limit", [(3, 0), (4, 0), (5, 7), (20, 0), (1, 2), (4, 8)])
def test_latent_batches_cut_across_shards_and_stop_at_the_limit(tmp_path, batch, limit):
    latents = np.arange(10 * 2 * 2 * 2, dtype=np.float32).reshape(10, 2, 2, 2)
    meta = pd.DataFrame({"id": [f"r{i}" for i in range(10)]})
    write_latent_split(tmp_path, "s", latents, meta, scaling_factor=0.25, info={"k": 1}, rows_per_shard=4)
    facts = latent_split_facts(tmp_path, "s")
    assert (facts.shape, facts.scaling_factor, facts.info, facts.rows) == ((2, 2, 2), 0.25, {"k": 1}, 10)
    parts = list(iter_latent_batches(tmp_path, "s", batch, limit))
    n = limit or 10
    assert [len(p.latents) for p in parts] == [batch] * (n // batch) + ([n % batch] if n % batch else [])
    np.testing.assert_array_equal(np.concatenate([p.latents for p in parts]), latents[:n])
    assert [i for p in parts for i in p.meta["id"]] == meta["id"].tolist()[:n]
    assert all(p.meta.index.tolist() == list(range(len(p.meta))) for p in parts)
    with pytest.raises(ValueError, match="batch_size must be"):
        next(iter_latent_batches(tmp_path, "s", 0))


def test_streamed_encoding_equals_encoding_the_whole_split():
    torch.manual_seed(0)
    vae = build_vae(block_out_channels=[8], norm_num_groups=4, sample_size=16).eval()
    images = tensor_to_images(_tiny_images(10))

    class Batch:
        def __init__(self, images):
            self.images = images

    streamed = list(encode_batches(vae, [Batch(images[i:i + 4]) for i in range(0, 10, 4)]))
    whole = encode_images(vae, images_to_tensor(images), batch_size=4)
    assert np.array_equal(np.concatenate([z for _, z, _ in streamed]), whole.numpy())
    recon = tensor_to_images(decode_latents(vae, whole, batch_size=4))
    assert np.array_equal(np.concatenate([r for _, _, r in streamed]), recon) and streamed[0][2].dtype == np.uint8


def test_latent_store_missing_split_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no latent shards for split 'test'"):
        read_latent_split(tmp_path, "test")


def test_pixel_conversion_roundtrip():
    img = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    x = images_to_tensor(img)
    assert x.shape == (2, 3, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert np.array_equal(tensor_to_images(x), img)


def _tiny_images(n=16):
    rng = np.random.default_rng(0)
    return images_to_tensor(rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8))


def test_tiny_vae_trains_saves_and_reloads(tmp_path):
    torch.manual_seed(0)
    x = _tiny_images()
    vae = build_vae(block_out_channels=[8, 16], norm_num_groups=4, sample_size=16)
    result = train_vae(vae, x, steps=4, batch_size=4, lr=1e-3, kl_weight=1e-6, seed=0, device=torch.device("cpu"), log_every=2)
    assert len(result.losses) == 2 and all(np.isfinite(result.losses))
    sf = fit_scaling_factor(vae, x)
    vae.register_to_config(scaling_factor=sf)
    z = encode_images(vae, x)
    assert z.shape == (16, 4, 8, 8)
    assert abs(float(z.std()) - 1.0) < 1e-3  # the fitted factor gives unit-variance latents
    vae.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").exists()
    again = load_saved_vae(tmp_path)
    assert again.config.scaling_factor == pytest.approx(sf)
    assert torch.allclose(encode_images(again, x), z, atol=1e-6)
    assert decode_latents(again, z).shape == x.shape


def test_vae_training_is_deterministic():
    x = _tiny_images(8)
    losses = []
    for _ in range(2):
        torch.manual_seed(0)
        vae = build_vae(block_out_channels=[8], norm_num_groups=4, sample_size=16)
        losses.append(train_vae(vae, x, steps=3, batch_size=4, lr=1e-3, kl_weight=1e-6, seed=3,
                                device=torch.device("cpu"), log_every=1).losses)
    assert losses[0] == losses[1]


def test_tiny_autoencoder_loads_through_the_same_path(tmp_path):
    tiny = AutoencoderTiny(encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
                           num_encoder_blocks=(1, 1), num_decoder_blocks=(1, 1), latent_channels=4)
    tiny.save_pretrained(tmp_path)
    vae = load_saved_vae(tmp_path)
    assert isinstance(vae, AutoencoderTiny)
    z = encode_images(vae, _tiny_images(2))
    assert z.shape[1] == 4 and decode_latents(vae, z).shape[1] == 3


def test_load_saved_vae_without_config_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="run the vae stage"):
        load_saved_vae(tmp_path)


def test_pickled_weights_are_never_loaded_only_safetensors(tmp_path):
    """A model folder whose weights are a pickle (``.bin``, which ``torch.load`` would run) is refused."""
    from diffusers import AutoencoderKL

    from pipeline.generate.unet import LatentDiffusion, build_unet, load_diffusion
    from pipeline.latents.vae import load_vae

    AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, latent_channels=4).save_pretrained(
        tmp_path / "vae", safe_serialization=False)
    assert (tmp_path / "vae/diffusion_pytorch_model.bin").is_file()
    with pytest.raises(InputError, match="no file named diffusion_pytorch_model.safetensors"):
        load_saved_vae(tmp_path / "vae")
    with pytest.raises(Exception, match="safetensors"):
        load_vae(str(tmp_path / "vae"))
    model = LatentDiffusion.centred_on(build_unet((4, 8, 8), [8, 16]), np.zeros((2, 4, 8, 8), np.float32))
    model.save(tmp_path / "unet")
    load_diffusion(tmp_path / "unet")                                   # the saved safetensors load
    model.unet.save_pretrained(tmp_path / "unet/unet", safe_serialization=False)
    (tmp_path / "unet/unet/diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(InputError, match="no file named diffusion_pytorch_model.safetensors"):
        load_diffusion(tmp_path / "unet")


@pytest.mark.parametrize("name", ["ddpm", "ddim", "dpmsolver"])
def test_variance_preserving_schedulers_match_the_closed_form(name):
    sched = make_scheduler(name, 50)
    x0 = torch.randn(3, 4, 2, 2)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    t = timestep_for_fraction(sched, 0.5)
    ab = alpha_bar(sched, t)
    expected = ab**0.5 * x0 + (1 - ab) ** 0.5 * eps
    assert torch.allclose(add_noise(sched, x0, eps, t), expected, atol=1e-4)


def test_euler_noises_in_sigma_space():
    sched = make_scheduler("euler", 50)
    x0 = torch.randn(3, 4, 2, 2)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    t = timestep_for_fraction(sched, 0.8)
    ab = alpha_bar(sched, t)
    sigma = ((1 - ab) / ab) ** 0.5
    assert torch.allclose(add_noise(sched, x0, eps, t), x0 + sigma * eps, rtol=1e-3, atol=1e-3)


def test_fractions_map_to_increasing_noise():
    sched = make_scheduler("ddim", 50)
    abs_ = [alpha_bar(sched, timestep_for_fraction(sched, f)) for f in (0.0, 0.2, 0.5, 0.8, 1.0)]
    # trailing spacing: 50 steps run t = 999 … 19, so the cleanest level is t = 19 (ᾱ 0.982), the noisiest pure noise
    assert abs_ == sorted(abs_, reverse=True) and abs_[0] > 0.98 and abs_[-1] < 0.01
    with pytest.raises(ValueError, match="t_frac"):
        timestep_for_fraction(sched, 1.5)


def test_noise_is_seeded():
    x = torch.zeros(2, 4, 2, 2)

    def noisy(seed):
        return oracle_trajectory("ddim", x, [0.5], 10, seed).latents

    assert torch.equal(noisy(5), noisy(5)) and not torch.equal(noisy(5), noisy(6))


def test_list_splits_finds_every_stored_split(tmp_path):
    from pipeline.shards import list_splits

    z = np.zeros((2, 4, 1, 1), np.float32)
    for split in ("ddim", "euler"):
        write_latent_split(tmp_path, split, z, pd.DataFrame({"id": ["a", "b"]}), scaling_factor=1.0, rows_per_shard=1)
    assert list_splits(tmp_path) == ["ddim", "euler"]


def test_posterior_sampling_is_seeded_by_a_cpu_generator():
    torch.manual_seed(0)
    vae = build_vae(block_out_channels=[8], norm_num_groups=4, sample_size=16).eval()
    x = _tiny_images(4)
    draw = lambda seed: encode_images(vae, x, sample=True, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(draw(1), draw(1)) and not torch.equal(draw(1), draw(2))
    assert not torch.equal(draw(1), encode_images(vae, x))  # sample() is not the mode


@pytest.mark.parametrize("side", [8, 32])
def test_fidelity_pixel_rows_streamed_batch_by_batch_equal_decoding_everything_first(side):
    """The pixel Fréchet's rows of decoded latents (pipeline.fidelity.study.decoded_pixels) equal those of
    the whole decoded set, at a side used as it is and at one block-averaged (a 4 px cap here)."""
    from diffusers import AutoencoderKL

    from pipeline.fidelity.study import _pixels, decoded_pixels
    from pipeline.latents.analysis import decode_to_images
    from pipeline.metrics import pixels

    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=(8,), norm_num_groups=4, latent_channels=4).eval()
    z = np.random.default_rng(0).normal(size=(70, 4, side, side)).astype(np.float32)   # 64 + 6: two batches
    cap = pixels.PIXEL_BASELINE_SIDE if side == 8 else 4
    with torch.no_grad(), pytest.MonkeyPatch.context() as mp:
        mp.setattr(pixels, "PIXEL_BASELINE_SIDE", cap)
        mp.setattr(pixels.pixel_features, "__defaults__", (cap,))
        np.testing.assert_array_equal(decoded_pixels(vae, z), _pixels(decode_to_images(vae, z)))
        assert decoded_pixels(vae, z).shape == (70, min(side, cap) ** 2 * 3)
