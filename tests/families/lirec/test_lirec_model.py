"""Tests of the LIReC clip representation and score heads (jaxaffect.families.lirec.model)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.families.lirec.model import (
    RELEASED_CODE,
    ClipRepresentation,
    LIReC,
    ModalityMLP,
    masked_pool,
)

DV, DT, DR = 12, 10, 14  # visual, text, per-character track input sizes (small for speed)
SMALL = dict(joint_dim=16, track_hidden_dim=16, track_out_dim=8)
D = 16 * 2 + 2 * 8  # Phi size with the SMALL dims


def _inputs(lead: tuple[int, ...], seed: int = 0, time: int | None = None):
    rng = np.random.default_rng(seed)
    t = () if time is None else (time,)
    vis = rng.normal(size=(*lead, *t, DV)).astype(np.float32)
    txt = rng.normal(size=(*lead, *t, DT)).astype(np.float32)
    trk = rng.normal(size=(*lead, 2, *t, DR)).astype(np.float32)
    return jnp.asarray(vis), jnp.asarray(txt), jnp.asarray(trk)


def _init(module, *args, seed: int = 0, **kw):
    """Random parameters of the right shapes, drawn with numpy (compiling ``init`` is slow)."""
    shapes = jax.eval_shape(lambda *a: module.init(jax.random.key(0), *a, **kw), *args)
    rng = np.random.default_rng(seed)

    def draw(s):
        scale = 1.0 / np.sqrt(s.shape[0]) if len(s.shape) == 2 else 0.1
        return jnp.asarray(rng.normal(scale=scale, size=s.shape).astype(np.float32))

    return jax.tree.map(draw, shapes)


_JITTED: dict = {}


def _apply(module, params, *args, rngs=None, **kw):
    """Jitted ``module.apply`` (compiled once per module and keyword set)."""
    arrays = {k: v for k, v in kw.items() if isinstance(v, jax.Array)}
    static = tuple(sorted((k, v) for k, v in kw.items() if k not in arrays))
    key = (id(module), static, tuple(sorted(arrays)))
    if key not in _JITTED:  # the module is kept in the value, so its id stays unique
        fn = jax.jit(lambda p, r, a, akw: module.apply(p, *a, rngs=r, **akw, **dict(static)))
        _JITTED[key] = (module, fn)
    return _JITTED[key][1](params, rngs, args, arrays)


def _dense(p, x):
    return x @ np.asarray(p["kernel"]) + np.asarray(p["bias"])


def _mlp(p, x):
    return _dense(p["fc2"], np.maximum(_dense(p["fc1"], x), 0.0))


def test_clip_representation_matches_numpy():
    rep = ClipRepresentation(**SMALL)
    vis, txt, trk = _inputs((3,))
    params = _init(rep, vis, txt, trk)["params"]
    out = np.asarray(_apply(rep, {"params": params}, vis, txt, trk))
    assert out.shape == (3, D) == (3, rep.out_dim)
    ref = np.tanh(np.concatenate([
        _mlp(params["text"], np.asarray(txt)), _mlp(params["visual"], np.asarray(vis)),
        _mlp(params["track_first"], np.asarray(trk[:, 0])),
        _mlp(params["track_second"], np.asarray(trk[:, 1]))], -1))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    assert params["track_first"]["fc1"]["kernel"].shape == (DR, 16)
    assert params["track_first"]["fc2"]["kernel"].shape == (16, 8)
    pre = _apply(rep, {"params": params}, vis, txt, trk, final=False)
    np.testing.assert_allclose(np.tanh(np.asarray(pre)), out, rtol=1e-6, atol=1e-6)


def test_flax_init_and_released_sizes():
    small = ModalityMLP(16, 8)
    vis, _, _ = _inputs((2,))
    params = jax.jit(small.init)(jax.random.key(0), vis)
    assert params["params"]["fc1"]["kernel"].shape == (DV, 16)
    assert np.all(np.isfinite(np.asarray(jax.jit(small.apply)(params, vis))))
    rep = ClipRepresentation()
    vis, txt, trk = jnp.zeros((1, 1024)), jnp.zeros((1, 768)), jnp.zeros((1, 2, 2048))
    shapes = jax.eval_shape(rep.init, jax.random.key(0), vis, txt, trk)["params"]
    assert shapes["track_first"]["fc1"]["kernel"].shape == (2048, 512)
    assert shapes["track_second"]["fc2"]["kernel"].shape == (512, 256)
    assert rep.out_dim == 1536
    model = LIReC(**RELEASED_CODE)
    k = 3
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, k, 1024)),
                            jnp.zeros((1, k, 768)), jnp.zeros((1, k, 2, 2048)),
                            jnp.ones((1, k), bool))["params"]
    assert shapes["int_hidden"]["kernel"].shape == (2 * 1536, 3072)  # the "gating" layer
    assert shapes["int_out"]["kernel"].shape == (3072, 101)
    assert shapes["rel_out"]["kernel"].shape == (1536, 15)


def test_dropout_order_is_equivalent_and_dropout_is_active():
    vis, _, _ = _inputs((4, 3))
    a = ModalityMLP(32, 8, dropout_rate=0.5, dropout_before_relu=True)
    b = ModalityMLP(32, 8, dropout_rate=0.5, dropout_before_relu=False)
    params = _init(a, vis)
    rngs = {"dropout": jax.random.key(3)}
    ya = _apply(a, params, vis, deterministic=False, rngs=rngs)
    yb = _apply(b, params, vis, deterministic=False, rngs=rngs)
    np.testing.assert_allclose(np.asarray(ya), np.asarray(yb), rtol=1e-6, atol=1e-6)
    y_eval = _apply(a, params, vis)
    assert not np.allclose(np.asarray(ya), np.asarray(y_eval))
    h = np.maximum(_dense(params["params"]["fc1"], np.asarray(vis)), 0.0)
    np.testing.assert_allclose(np.asarray(y_eval), _dense(params["params"]["fc2"], h),
                               rtol=1e-5, atol=1e-5)


def test_broadcast_clip_branches_over_pairs():
    rep = ClipRepresentation(**SMALL)
    b, p, k = 2, 3, 4
    vis, txt, _ = _inputs((b, 1, k), seed=1)
    _, _, trk = _inputs((b, p, k), seed=2)
    params = _init(rep, vis, txt, trk)
    y = _apply(rep, params, vis, txt, trk)
    y_full = _apply(rep, params, jnp.broadcast_to(vis, (b, p, k, DV)),
                       jnp.broadcast_to(txt, (b, p, k, DT)), trk)
    assert y.shape == (b, p, k, D)
    np.testing.assert_allclose(np.asarray(y), np.asarray(y_full), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["avg", "sum", "max"])
def test_masked_pool_matches_numpy(kind):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 4)).astype(np.float32)
    mask = rng.random((3, 5)) > 0.4
    mask[1] = False  # an empty group
    mask[2, 0] = True
    got_eager = np.asarray(masked_pool(jnp.asarray(x), jnp.asarray(mask), kind))
    got_jit = np.asarray(jax.jit(masked_pool, static_argnums=2)(
        jnp.asarray(x), jnp.asarray(mask), kind))
    ref = np.zeros((3, 4), np.float32)
    for i in range(3):
        sel = x[i][mask[i]]
        if len(sel):
            ref[i] = {"avg": sel.mean(0), "sum": sel.sum(0), "max": sel.max(0)}[kind]
    np.testing.assert_allclose(got_eager, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_jit, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["avg", "max"])
def test_temporal_pool_inside_module(kind):
    t = 5
    vis, txt, trk = _inputs((2,), seed=4, time=t)
    rng = np.random.default_rng(1)
    vmask = jnp.asarray(rng.random((2, t)) > 0.3).at[:, 0].set(True)
    tmask = jnp.asarray(rng.random((2, t)) > 0.3).at[:, 0].set(True)
    rmask = jnp.asarray(rng.random((2, 2, t)) > 0.3).at[..., 0].set(True)
    pooled = ClipRepresentation(**SMALL, temporal_pool=kind)
    plain = ClipRepresentation(**SMALL)
    params = _init(pooled, vis, txt, trk, visual_mask=vmask, text_mask=tmask,
                         track_mask=rmask)
    y = _apply(pooled, params, vis, txt, trk, visual_mask=vmask, text_mask=tmask,
                     track_mask=rmask)
    y_ref = _apply(plain, params, masked_pool(vis, vmask, kind), masked_pool(txt, tmask, kind),
                        masked_pool(trk, rmask, kind))
    np.testing.assert_allclose(np.asarray(y), np.asarray(y_ref), rtol=1e-6, atol=1e-6)


def _model_and_params(coupling="rel_to_int", lead=(2, 3), seed=0, **kw):
    model = LIReC(num_interactions=7, num_relationships=5, coupling=coupling,
                  int_hidden_dim=24, **SMALL, **kw)
    vis, txt, trk = _inputs(lead, seed=seed)
    mask = jnp.ones(lead, bool).at[0, -1].set(False)
    params = _init(model, vis, txt, trk, mask)
    return model, params, (vis, txt, trk, mask)


@pytest.mark.parametrize("coupling,int_in,rel_in", [
    ("none", D, D), ("rel_to_int", 2 * D, D), ("int_to_rel", D, 2 * D),
    ("both", 2 * D, 2 * D)])
def test_coupling_shapes(coupling, int_in, rel_in):
    model, params, inputs = _model_and_params(coupling)
    p = params["params"]
    assert p["int_hidden"]["kernel"].shape == (int_in, 24)
    assert p["rel_out"]["kernel"].shape == (rel_in, 5)
    assert "phi_rel" in p and "phi_int" in p
    shapes = jax.eval_shape(model.apply, params, *inputs)
    assert shapes["interaction_logits"].shape == (2, 3, 7)
    assert shapes["relationship_logits"].shape == (2, 5)
    if coupling != "both":  # one numeric eager/jitted comparison is enough
        return
    jitted = jax.jit(model.apply)(params, *inputs)
    out = model.apply(params, *inputs)
    for key in out:
        np.testing.assert_allclose(np.asarray(out[key]), np.asarray(jitted[key]),
                                   rtol=1e-5, atol=1e-5)


def test_rel_logits_ignore_masked_clips_and_coupling_dependence():
    for coupling in ("none", "rel_to_int"):
        model, params, (vis, txt, trk, mask) = _model_and_params(coupling)
        out = _apply(model, params, vis, txt, trk, mask)
        # change the masked clip (sample 0, slot 2): relationships unchanged
        out2 = _apply(model, params, vis.at[0, 2].add(3.0), txt, trk, mask)
        np.testing.assert_allclose(np.asarray(out["relationship_logits"]),
                                   np.asarray(out2["relationship_logits"]), atol=1e-6)
        # change an unmasked clip (sample 0, slot 1): slot 0's interaction logits change only
        # when Phi_R(V) is fed to the interaction head (Eq. 5)
        out3 = _apply(model, params, vis.at[0, 1].add(3.0), txt, trk, mask)
        same = np.allclose(np.asarray(out["interaction_logits"][0, 0]),
                           np.asarray(out3["interaction_logits"][0, 0]), atol=1e-6)
        assert same == (coupling == "none")


def test_rel_pool_before_tanh_and_shared_weights():
    lead = (2, 3)
    model_a, params, (vis, txt, trk, mask) = _model_and_params("rel_to_int", lead,
                                                               rel_pool_before_tanh=True)
    model_b = model_a.clone(rel_pool_before_tanh=False)
    # identical clips in every slot: pooling before or after tanh agrees
    same = lambda x: jnp.broadcast_to(x[:, :1], x.shape)
    ya = _apply(model_a, params, same(vis), same(txt), same(trk), mask)
    yb = _apply(model_b, params, same(vis), same(txt), same(trk), mask)
    np.testing.assert_allclose(np.asarray(ya["relationship_logits"]),
                               np.asarray(yb["relationship_logits"]), rtol=1e-5, atol=1e-5)
    ya = _apply(model_a, params, vis, txt, trk, mask)
    yb = _apply(model_b, params, vis, txt, trk, mask)
    assert not np.allclose(np.asarray(ya["relationship_logits"]),
                           np.asarray(yb["relationship_logits"]), atol=1e-4)
    shared, params_s, inputs = _model_and_params("none", separate_rel_weights=False)
    assert "phi_rel" not in params_s["params"]
    assert _apply(shared, params_s, *inputs)["relationship_logits"].shape == (2, 5)


def test_linear_interaction_head_and_single_task():
    model = LIReC(num_interactions=7, num_relationships=5, coupling="none",
                  tasks=("interactions",), int_hidden_dim=0, **SMALL,
                  modalities=("visual", "text"))
    vis, txt, _ = _inputs((2, 1))
    params = _init(model, vis, txt, None, jnp.ones((2, 1), bool))
    assert set(params["params"]) == {"phi_int", "int_out"}
    assert params["params"]["int_out"]["kernel"].shape == (32, 7)
    out = _apply(model, params, vis, txt, None, jnp.ones((2, 1), bool))
    assert set(out) == {"interaction_logits"}
    with pytest.raises(ValueError):
        LIReC(coupling="rel_to_int", tasks=("relationships",), **SMALL,
              modalities=("visual", "text")).init(
            jax.random.key(0), vis, txt, None, jnp.ones((2, 1), bool))


def test_candidate_pairs_layout():
    """[B, P, K] groups (per candidate pair) with clip features shared over pairs."""
    b, p, k = 2, 4, 3
    model = LIReC(num_interactions=7, num_relationships=5, coupling="both",
                  int_hidden_dim=24, **SMALL)
    vis, txt, _ = _inputs((b, 1, k), seed=5)
    _, _, trk = _inputs((b, p, k), seed=6)
    mask = jnp.ones((b, p, k), bool).at[:, :, 0].set(False)  # target clip outside V
    params = _init(model, vis, txt, trk, mask)
    out = _apply(model, params, vis, txt, trk, mask)
    assert out["interaction_logits"].shape == (b, p, k, 7)
    assert out["relationship_logits"].shape == (b, p, 5)
    assert np.all(np.isfinite(np.asarray(out["relationship_logits"])))


def test_model_trains_with_the_joint_character_loss():
    """End to end: candidate pairs -> LIReC -> Eqs. 12-14 loss; a few SGD steps lower it."""
    from jaxaffect.families.lirec.inference import pair_accuracy
    from jaxaffect.families.lirec.losses import interaction_relationship_character_loss

    b, p, k = 4, 3, 2
    model = LIReC(num_interactions=7, num_relationships=5, coupling="rel_to_int",
                  int_hidden_dim=24, **SMALL, dropout_rate=0.0)
    vis, txt, _ = _inputs((b, 1, k), seed=7)
    _, _, trk = _inputs((b, p, k), seed=8)
    mask = jnp.ones((b, p, k), bool)
    pair_mask = jnp.ones((b, p), bool).at[0, 2].set(False)
    int_labels, rel_labels = jnp.array([0, 1, 2, 3]), jnp.array([0, 1, 2, 3])
    params = _init(model, vis, txt, trk, mask)

    def loss_fn(params):
        out = model.apply(params, vis, txt, trk, mask)
        loss, aux = interaction_relationship_character_loss(
            out["interaction_logits"][:, :, 0], out["relationship_logits"], int_labels,
            rel_labels, pair_mask, supervision="full", true_pair=jnp.zeros(b, int),
            margin_int=0.3, margin_rel=0.3)
        return loss, out

    @jax.jit
    def step(params):
        (loss, out), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        return jax.tree.map(lambda w, g: w - 0.5 * g, params, grads), loss, out, grads

    params, first, _, grads = step(params)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree.leaves(grads))
    assert np.any(np.asarray(grads["params"]["phi_rel"]["visual"]["fc1"]["kernel"]) != 0)
    for _ in range(30):
        params, last, out, _ = step(params)
    assert float(last) < 0.5 * float(first)
    acc = pair_accuracy(out["interaction_logits"][:, :, 0], int_labels, jnp.zeros(b, int),
                        pair_mask, out["relationship_logits"], rel_labels)
    assert float(acc) == 1.0
