"""Tests of the AV-CPNet model assembly (jaxaffect.families.avcpnet.model) at a tiny size."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.families.avcpnet.fusion import FUSIONS
from jaxaffect.families.avcpnet.model import AVCPNet
from jaxaffect.testing import random_variables

C = 6
# Two Swin stages (the backbone takes any number; the paper's has four) keep compiles short.
SWIN = dict(embed_dim=8, depths=(1, 1), num_heads=(1, 2), patch_size=(2, 4, 4),
            window_size=(2, 2, 2), stochastic_depth=0.1)
TINY = dict(num_classes=C, hidden=16, swin=SWIN, audio_width=8, audio_blocks=(1, 1, 1, 1),
            audio_norm_groups=2)
B, S, T, HW, TA, F, N = 2, 2, 4, 16, 3, 64, 32


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    video = jnp.asarray(rng.normal(size=(B, S, T, HW, HW, 3)), jnp.float32)
    mfcc = jnp.asarray(rng.normal(size=(B, TA, F, N)), jnp.float32)
    return video, mfcc, jnp.asarray([True, False])


CONFIGS = ([dict(branches="v"), dict(branches="a")]
           + [dict(caf=caf, caf_tokens=tok, fusion=fus) for (caf, tok), fus in itertools.product(
               [(False, "single"), (True, "single"), (True, "segments")], sorted(FUSIONS))])


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(map(str, c.values())))
def test_output_heads_and_shapes(config):
    """Every branch / fusion / token mode, by abstract evaluation (no compile)."""
    model = AVCPNet(**TINY, **config)
    video, mfcc, has_audio = inputs()
    out, variables = jax.eval_shape(model.init_with_output, jax.random.key(0), video, mfcc,
                                    has_audio)
    heads = {"v": ["visual"], "a": ["audio"]}.get(config.get("branches"),
                                                   ["audio", "fused", "visual"])
    assert sorted(out) == heads
    for logits in out.values():
        assert logits.shape == (B, C) and logits.dtype == jnp.float32
    params = variables["params"]
    assert ("caf" in params) == (config.get("branches", "av") == "av" and config["caf"])
    assert ("visual_backbone" in params) == (config.get("branches") != "a")
    assert ("audio_backbone" in params) == (config.get("branches") != "v")


@pytest.fixture(scope="module")
def segments_model():
    model = AVCPNet(**TINY, caf_tokens="segments", fusion="sum")
    video, mfcc, has_audio = inputs()
    variables = random_variables(model, video, mfcc, has_audio)
    return model, variables, jax.jit(model.apply)


def test_eager_equals_jitted_and_sown_weights(segments_model):
    model, variables, apply = segments_model
    video, mfcc, has_audio = inputs()
    jitted = apply(variables, video, mfcc, has_audio)
    eager, inter = model.apply(variables, video, mfcc, has_audio, mutable=["intermediates"])
    for k in ("fused", "visual", "audio"):
        np.testing.assert_allclose(np.asarray(eager[k]), np.asarray(jitted[k]), rtol=1e-4,
                                   atol=1e-4)
        assert np.all(np.isfinite(np.asarray(jitted[k])))
    sown = inter["intermediates"]
    assert sown["caf"]["caf_visual_to_audio"][0].shape == (B, 4, S, TA)
    assert sown["caf"]["caf_audio_to_visual"][0].shape == (B, 4, TA, S)
    assert sown["audio_temporal"]["temporal_weights"][0].shape == (B, TA)
    # example 1 has no audio: the visual queries attend to nothing, its audio weights are 0
    assert np.all(np.asarray(sown["caf"]["caf_visual_to_audio"][0])[1] == 0.0)
    assert np.all(np.asarray(sown["audio_temporal"]["temporal_weights"][0])[1] == 0.0)


def test_missing_audio_only_video_matters(segments_model):
    """With has_audio False the fused and visual logits do not depend on the MFCC input and the
    audio logits are the audio head's bias."""
    _, variables, apply = segments_model
    video, mfcc, has_audio = inputs()
    out = apply(variables, video, mfcc, has_audio)
    other = apply(variables, video, mfcc.at[1].set(100.0), has_audio)
    for k in ("fused", "visual", "audio"):
        np.testing.assert_array_equal(np.asarray(out[k])[1], np.asarray(other[k])[1])
    np.testing.assert_allclose(np.asarray(out["audio"])[1],
                               np.asarray(variables["params"]["head_audio"]["bias"]), rtol=1e-6)
    for k in ("fused", "visual", "audio"):  # examples never mix
        np.testing.assert_allclose(np.asarray(out[k])[0], np.asarray(other[k])[0], rtol=1e-5,
                                   atol=1e-6)
    changed = apply(variables, video, mfcc.at[0].add(1.0), has_audio)
    assert not np.allclose(np.asarray(out["fused"])[0], np.asarray(changed["fused"])[0])


def test_training_gradients_finite_and_bf16_close(segments_model):
    model, variables, apply = segments_model
    video, mfcc, has_audio = inputs()

    def loss(v, key):
        out = model.apply(v, video, mfcc, has_audio, train=True, rngs={"dropout": key})
        return sum(jnp.mean(jnp.square(o)) for o in out.values())

    grads = jax.jit(jax.grad(loss))(variables, jax.random.key(1))
    leaves = jax.tree_util.tree_leaves(grads)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in leaves)
    assert np.any(np.asarray(grads["params"]["caf"]["attend_visual"]["query"]["kernel"]) != 0)

    out32 = apply(variables, video, mfcc, has_audio)
    bf16 = AVCPNet(**TINY, caf_tokens="segments", fusion="sum", dtype=jnp.bfloat16)
    out16 = jax.jit(bf16.apply)(variables, video, mfcc, has_audio)
    for k, ref in out32.items():
        assert out16[k].dtype == jnp.float32
        scale = np.abs(np.asarray(ref)).max()
        assert np.abs(np.asarray(out16[k]) - np.asarray(ref)).max() < 0.05 * scale + 0.05, k


def test_bad_settings_raise():
    video, mfcc, has_audio = inputs()
    for bad in (dict(branches="va"), dict(caf_tokens="all"), dict(fusion="max")):
        with pytest.raises(ValueError, match=next(iter(bad))):
            jax.eval_shape(AVCPNet(**TINY, **bad).init, jax.random.key(0), video, mfcc)
