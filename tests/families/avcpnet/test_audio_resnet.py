"""Tests of AV-CPNet's audio branch: ResNet-34 (GroupNorm) per MFCC segment and the temporal
attention pooling, against loop references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.families.avcpnet.audio_resnet import AudioResNet34, TemporalAttention
from jaxaffect.testing import eager_and_jitted, random_variables

# Few groups and a 64x32 MFCC map, so every norm group still holds many values at stage 4
# (one value per group would make GroupNorm's output its bias alone).
TINY = dict(width=8, blocks=(1, 1, 1, 1), norm_groups=2)


def mfcc(b=2, t=3, f=64, n=32, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(b, t, f, n)), jnp.float32)


@pytest.fixture(scope="module")
def tiny():
    model = AudioResNet34(**TINY)
    x = mfcc()
    return model, random_variables(model, x), x


def test_resnet34_layout_and_parameter_count():
    model = AudioResNet34()
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 4, 256, 64)))["params"]
    blocks = [k for k in shapes if k.startswith("stage")]
    assert len(blocks) == 3 + 4 + 6 + 3
    assert shapes["stem_conv"]["kernel"].shape == (7, 7, 1, 64)
    assert shapes["stage4_block1"]["conv1"]["kernel"].shape == (3, 3, 256, 512)
    assert "proj_conv" in shapes["stage2_block1"] and "proj_conv" not in shapes["stage1_block1"]
    n = sum(a.size for a in jax.tree_util.tree_leaves(shapes))
    # the standard ResNet-34 without its classifier, with a one-channel stem (norm scale+bias
    # per channel as batch norm's affine parameters)
    assert n == 21_278_400
    out = jax.eval_shape(model.apply, {"params": shapes}, jnp.zeros((2, 4, 256, 64)))
    assert out.shape == (2, 4, 512)


def test_shapes_jit_and_eager(tiny):
    model, variables, x = tiny
    eager, jitted = eager_and_jitted(lambda v, a: model.apply(v, a), variables, x)
    assert eager.shape == (2, 3, 8 * TINY["width"]) and eager.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(eager), np.asarray(jitted), rtol=2e-5, atol=2e-5)


def test_each_segment_and_example_independent(tiny):
    """Segments are encoded one by one (no mixing along t), and GroupNorm normalises each example
    alone, so an output row depends only on its own MFCC segment."""
    model, variables, x = tiny
    apply = jax.jit(model.apply)
    full = np.asarray(apply(variables, x))
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            alone = np.asarray(apply(variables, x[i:i + 1, j:j + 1]))[0, 0]
            np.testing.assert_allclose(full[i, j], alone, rtol=2e-5, atol=2e-5)


def test_remat_same_gradients():
    two_stages = dict(TINY, blocks=(1, 1))  # remat wraps blocks; two stages keep compiles short
    model, x = AudioResNet34(**two_stages), mfcc(f=16, n=16)
    variables = random_variables(model, x)

    def loss(m):
        return lambda v: jnp.sum(jnp.square(m.apply(v, x)))

    g = jax.jit(jax.grad(loss(model)))(variables)
    g_remat = jax.jit(jax.grad(loss(AudioResNet34(**two_stages, remat=True))))(variables)
    for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(g_remat)):
        assert np.all(np.isfinite(np.asarray(a))) and np.any(np.asarray(a) != 0)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


def test_bf16_close_to_float32(tiny):
    model, variables, x = tiny
    out32 = np.asarray(jax.jit(model.apply)(variables, x))
    bf16 = AudioResNet34(**TINY, dtype=jnp.bfloat16)
    out16 = np.asarray(jax.jit(bf16.apply)(variables, x)).astype(np.float32)
    assert np.abs(out16 - out32).max() < 0.05 * np.abs(out32).max() + 0.02


def numpy_temporal(p, x, mask, normalize):
    """Loop reference: u_j = w . f_j, r = ReLU(W_fc u + b), weights, pooled vector."""
    b, t, _ = x.shape
    w1 = np.asarray(p["conv1x1"]["kernel"], np.float64)[:, 0]
    wf = np.asarray(p["fc"]["kernel"], np.float64)
    bf = np.asarray(p["fc"]["bias"], np.float64)
    out = np.zeros((b, x.shape[-1]))
    for i in range(b):
        u = np.array([x[i, j] @ w1 if mask[i, j] else 0.0 for j in range(t)])
        r = np.maximum(u @ wf + bf, 0.0)
        present = [j for j in range(t) if mask[i, j]]
        if not present:
            continue
        if normalize == "softmax":
            e = {j: np.exp(r[j] - max(r[k] for k in present)) for j in present}
            a = {j: e[j] / sum(e.values()) for j in present}
        else:
            a = {j: r[j] / len(present) for j in present}
        out[i] = sum(a[j] * x[i, j] for j in present)
    return out


@pytest.mark.parametrize("normalize", ["softmax", "none"])
def test_temporal_attention_matches_loop(normalize):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 5, 6)).astype(np.float32)
    mask = np.ones((4, 5), bool)
    mask[1, 3:] = False
    mask[2] = False  # no present segment -> 0
    garbage = x.copy()
    garbage[~mask] = 1e3  # absent segments' content never matters
    layer = TemporalAttention(normalize)
    variables = random_variables(layer, jnp.asarray(x), jnp.asarray(mask), seed=2)
    eager, jitted = eager_and_jitted(lambda v, a, m: layer.apply(v, a, m), variables,
                                     jnp.asarray(garbage), jnp.asarray(mask))
    want = numpy_temporal(variables["params"], x.astype(np.float64), mask, normalize)
    np.testing.assert_allclose(np.asarray(eager), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(jitted), want, rtol=1e-5, atol=1e-5)
    assert np.all(np.asarray(eager)[2] == 0.0)
    # no mask = all present; the weights are sown
    out, inter = layer.apply(variables, jnp.asarray(x), mutable=["intermediates"])
    np.testing.assert_allclose(
        np.asarray(out), numpy_temporal(variables["params"], x, np.ones((4, 5), bool), normalize),
        rtol=1e-5, atol=1e-5)
    weights = np.asarray(inter["intermediates"]["temporal_weights"][0])
    assert weights.shape == (4, 5)
    if normalize == "softmax":
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    g = jax.grad(lambda v: jnp.sum(layer.apply(v, jnp.asarray(x), jnp.asarray(mask)) ** 2))(
        variables)
    assert all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree_util.tree_leaves(g))


def test_temporal_attention_rejects_unknown_mode():
    with pytest.raises(ValueError, match="normalize"):
        TemporalAttention("max").init(jax.random.key(0), jnp.zeros((1, 2, 3)))
