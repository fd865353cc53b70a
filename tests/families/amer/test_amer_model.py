"""Tests of the AMER model (jaxaffect.families.amer.amer_model) against a loop reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.families.amer.amer_model import AMER
from jaxaffect.testing import eager_and_jitted, random_variables

DIMS = {"audio": 7, "text": 6, "visual": 9}
DP = 5
C = 4
# Tiny sizes; the modality encoders end in different widths on purpose (per-modality scale).
SMALL = dict(num_classes=C, audio_sizes=(12, 8), text_sizes=(10, 9, 6), visual_sizes=(11, 8),
             personality_sizes=(9, 8), fusion_size=12, classifier_sizes=(10,))
MODS = ("audio", "text", "visual")
# (persons, segments) of the real part of each example: several persons, one person, all
# modalities absent (forced below), the full padded size, a single segment.
REAL = [(3, 4), (1, 3), (2, 2), (4, 5), (2, 1)]


def make_batch(p_max: int = 4, s_max: int = 5, seed: int = 0, garbage: bool = True):
    """A padded batch (numpy). With `garbage`, absent slots hold 50, padded slots NaN with
    presence flags set, padded persons a NaN personality; without it all of them are 0/False.
    The reference only ever reads the real, present entries."""
    rng = np.random.default_rng(seed)
    b = len(REAL)
    batch = {"person_mask": np.zeros((b, p_max), bool), "segment_mask": np.zeros((b, s_max), bool),
             "personality": rng.normal(size=(b, p_max, DP)).astype(np.float32),
             "persons": np.full((b, p_max), -1, np.int32),
             "target_person": np.zeros(b, np.int32), "target_segment": np.zeros(b, np.int32)}
    for i, (n_p, n_s) in enumerate(REAL):
        batch["person_mask"][i, :n_p] = True
        batch["segment_mask"][i, :n_s] = True
        batch["persons"][i, :n_p] = rng.permutation(8)[:n_p]
        batch["target_person"][i] = rng.integers(n_p)
        batch["target_segment"][i] = rng.integers(n_s)
    real = batch["person_mask"][:, :, None] & batch["segment_mask"][:, None, :]
    for m, d in DIMS.items():
        present = (rng.random((b, p_max, s_max)) < 0.5) & real
        present[2] = False  # example 2: every modality absent everywhere
        present[3, :, 1] = False  # a segment where no person has the modality
        present[3, 2, :] = False  # a person who never has it
        x = rng.normal(size=(b, p_max, s_max, d)).astype(np.float32)
        if garbage:
            x[~present] = 50.0
            x[~real] = np.nan
            present = present | ~real
        else:
            x[~present] = 0.0
        batch[m], batch[f"{m}_present"] = x, present
    if garbage:
        batch["personality"][~batch["person_mask"]] = np.nan
    return batch


def _mlp(p, x):
    n = len(p)
    for i in range(n):
        x = x @ np.asarray(p[f"layers_{i}"]["kernel"], np.float64) + np.asarray(
            p[f"layers_{i}"]["bias"], np.float64)
        if i < n - 1:
            x = np.maximum(x, 0.0)
    return x


def _att_row(q, keys, present, released):
    """One query over its keys (all real): softmax(q k / sqrt(d)) v with masked keys; no present
    key -> 0, or (released) the uniform mean over all keys."""
    if not present.any():
        return keys.mean(0) if released else np.zeros_like(q)
    logits = keys @ q / np.sqrt(q.shape[0])
    logits = np.where(present, logits, -np.inf)
    w = np.exp(logits - logits.max())
    w /= w.sum()
    return w @ keys


def reference(params, batch, *, modalities=MODS, use_personality=True, intra_personal=True,
              inter_personal=True, released_code=False):
    """Plain loops over examples, persons and segments on each example's real slice (as the
    authors' code slices); returns (logits [B, C], person attention [B, P] or None)."""
    b, p_max = batch["person_mask"].shape
    logits, maps = [], np.zeros((b, p_max))
    for e in range(b):
        n_p, n_s = int(batch["person_mask"][e].sum()), int(batch["segment_mask"][e].sum())
        tp, ts = int(batch["target_person"][e]), int(batch["target_segment"][e])
        fp = _mlp(params["enc_personality"], batch["personality"][e, :n_p].astype(np.float64)) \
            if use_personality else None
        per_person = [[] for _ in range(n_p)]
        for m in (m for m in MODS if m in modalities):  # fusion order a, t, v
            pres = batch[f"{m}_present"][e, :n_p, :n_s]
            x = np.where(pres[..., None], batch[m][e, :n_p, :n_s], 0.0).astype(np.float64)
            f = _mlp(params[f"enc_{m}"], x)
            if use_personality:
                f = np.concatenate([f, np.repeat(fp[:, None], n_s, 1)], -1)
            h1 = f.copy()
            if inter_personal:
                for s in range(n_s):
                    for i in range(n_p):
                        h1[i, s] = f[i, s] + _att_row(f[i, s], f[:, s], pres[:, s], released_code)
            for i in range(n_p):
                h2 = h1[i, ts]
                if intra_personal:
                    h2 = h2 + _att_row(h1[i, ts], h1[i], pres[i], released_code)
                per_person[i].append(h2)
        if use_personality:
            for i in range(n_p):
                per_person[i].append(fp[i])
        fus = params["fusion"]
        h = np.stack([np.concatenate(v) for v in per_person]) @ np.asarray(
            fus["kernel"], np.float64) + np.asarray(fus["bias"], np.float64)
        out = h[tp]
        if inter_personal:
            logit = h @ h[tp] / np.sqrt(h.shape[1])
            w = np.exp(logit - logit.max())
            w /= w.sum()
            maps[e, :n_p] = w
            if not (released_code and n_p == 1):
                out = h[tp] + w @ h
        logits.append(_mlp(params["classifier"], out))
    return np.stack(logits), (maps if inter_personal else None)


def _as_jax(batch):
    return {k: jnp.asarray(v) for k, v in batch.items()}


def _variables(model, batch):
    """Random parameters, scaled so that no attention saturates to one-hot at these sizes."""
    return jax.tree.map(lambda a: a * 0.7, random_variables(model, batch))


FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
CASES = [
    dict(),
    dict(use_personality=False),
    dict(intra_personal=False),
    dict(inter_personal=False),
    dict(modalities=("visual", "text")),
]


@pytest.mark.parametrize("released_code", [False, True])
@pytest.mark.parametrize("case", CASES, ids=["full", "no_pers", "no_intra", "no_inter", "tv"])
def test_matches_loop_reference(case, released_code):
    model = AMER(**SMALL, released_code=released_code, **case)
    batch_np = make_batch()
    batch = _as_jax(batch_np)
    variables = _variables(model, batch)
    ref_logits, ref_maps = reference(variables["params"], make_batch(garbage=False),
                                     released_code=released_code, **case)
    fn = lambda v, x: model.apply(v, x, mutable=["intermediates"])
    with jax.default_matmul_precision("highest"):
        # Un-jitted runs compile every op once (seconds): the full model in both modes; the
        # variants jitted only, with a cheaper XLA backend (same numbers, faster compile).
        if case:
            runs = (jax.jit(fn, compiler_options=FAST_COMPILE)(variables, batch),)
        else:
            runs = eager_and_jitted(fn, variables, batch)
    for out, state in runs:
        assert out["logits"].dtype == jnp.float32 and out["logits"].shape == (len(REAL), C)
        np.testing.assert_allclose(np.asarray(out["logits"]), ref_logits, rtol=1e-5, atol=1e-5)
        inter = state.get("intermediates", {})
        if ref_maps is None:
            assert "person_attention" not in inter
        else:
            (maps,) = inter["person_attention"]
            np.testing.assert_allclose(np.asarray(maps), ref_maps, rtol=1e-5, atol=1e-5)
            assert (np.asarray(maps)[~batch_np["person_mask"]] == 0).all()


def test_released_mode_differs_where_it_should():
    """The modes differ on the single-person and the all-absent examples (the reference test
    pins down both; this guards against the reference and model sharing a no-op)."""
    batch = _as_jax(make_batch())
    paper, released = AMER(**SMALL), AMER(**SMALL, released_code=True)
    variables = _variables(paper, batch)
    with jax.default_matmul_precision("highest"):
        a = np.asarray(paper.apply(variables, batch)["logits"])
        b = np.asarray(released.apply(variables, batch)["logits"])
    assert not np.allclose(a[1], b[1], atol=1e-3)  # one person: h vs h + Att
    assert not np.allclose(a[2], b[2], atol=1e-3)  # all absent: 0 vs uniform mean


def test_padding_invariance():
    """Two more padded persons and three more padded segments, all garbage (NaN or huge values
    with presence flags set), leave the logits of both modes equal to the loop reference."""
    small = make_batch()
    b, p, s = small["person_mask"].shape + small["segment_mask"].shape[1:]
    pb, sb = p + 2, s + 3
    big = {"target_person": small["target_person"], "target_segment": small["target_segment"]}
    big["person_mask"] = np.pad(small["person_mask"], ((0, 0), (0, pb - p)))
    big["segment_mask"] = np.pad(small["segment_mask"], ((0, 0), (0, sb - s)))
    big["persons"] = np.pad(small["persons"], ((0, 0), (0, pb - p)), constant_values=-1)
    big["personality"] = np.pad(small["personality"], ((0, 0), (0, pb - p), (0, 0)),
                                constant_values=1e4)
    junk = np.where(np.arange(b)[:, None, None, None] % 2, np.nan, 1e4).astype(np.float32)
    for m, d in DIMS.items():
        big[m] = np.broadcast_to(junk, (b, pb, sb, d)).copy()
        big[m][:, :p, :s] = small[m]
        big[f"{m}_present"] = np.pad(small[f"{m}_present"], ((0, 0), (0, pb - p), (0, sb - s)),
                                     constant_values=True)
    models = [AMER(**SMALL, released_code=r) for r in (False, True)]
    variables = _variables(models[0], _as_jax(small))
    with jax.default_matmul_precision("highest"):
        outs = jax.jit(lambda v, x: [m.apply(v, x)["logits"] for m in models],
                       compiler_options=FAST_COMPILE)(
            variables, _as_jax(big))
    clean = make_batch(garbage=False)
    for released, out in zip((False, True), outs):
        ref, _ = reference(variables["params"], clean, released_code=released)
        np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-5, atol=1e-5)


def test_param_tree():
    batch = _as_jax(make_batch())
    full = AMER(num_classes=C)
    shapes = jax.eval_shape(full.init, jax.random.key(0), batch)["params"]
    assert set(shapes) == {"enc_audio", "enc_text", "enc_visual", "enc_personality", "fusion",
                           "classifier"}
    k = {n: [shapes[n][f"layers_{i}"]["kernel"].shape for i in range(len(shapes[n]))]
         for n in shapes if n != "fusion"}
    assert k["enc_audio"] == [(7, 1024), (1024, 512), (512, 256)]
    assert k["enc_text"] == [(6, 512), (512, 384), (384, 256)]
    assert k["enc_visual"] == [(9, 512), (512, 384), (384, 256)]
    assert k["enc_personality"] == [(DP, 512), (512, 256)]
    assert k["classifier"] == [(512, 256), (256, C)]
    assert shapes["fusion"]["kernel"].shape == (3 * 512 + 256, 512)
    assert shapes["fusion"]["bias"].shape == (512,)
    sub = AMER(num_classes=C, modalities=("text",), use_personality=False)
    shapes = jax.eval_shape(sub.init, jax.random.key(0), batch)["params"]
    assert set(shapes) == {"enc_text", "fusion", "classifier"}
    assert shapes["fusion"]["kernel"].shape == (256, 512)


def test_rejects_unknown_modality():
    batch = _as_jax(make_batch())
    with pytest.raises(ValueError, match="modalities"):
        jax.eval_shape(AMER(num_classes=C, modalities=("audio", "faces")).init,
                       jax.random.key(0), batch)


def test_bfloat16_finite_float32_logits():
    batch = _as_jax(make_batch())
    model = AMER(**SMALL, dtype=jnp.bfloat16)
    variables = _variables(model, batch)
    out = jax.jit(model.apply, compiler_options=FAST_COMPILE)(variables, batch)["logits"]
    assert out.dtype == jnp.float32 and np.isfinite(np.asarray(out)).all()
    assert jax.tree.leaves(variables)[0].dtype == jnp.float32  # parameters stay float32
    ref, _ = reference(variables["params"], make_batch(garbage=False))
    np.testing.assert_allclose(np.asarray(out), ref, atol=0.05 * np.abs(ref).max())


def _one_speaker(batch: dict, clean: dict) -> tuple[dict, dict]:
    """Both batches with audio and text kept for at most the first present person of each
    segment (MEmoR: only the segment's speaker has them)."""
    batch, clean = dict(batch), dict(clean)
    real = clean["person_mask"][:, :, None] & clean["segment_mask"][:, None, :]
    for m in ("audio", "text"):
        present = clean[f"{m}_present"].copy()
        first = np.cumsum(present, axis=1) == 1
        present &= first
        x_clean = np.where(present[..., None], clean[m], 0.0).astype(np.float32)
        x = np.where(present[..., None], batch[m], np.where(real[..., None], 50.0, np.nan))
        clean[m], clean[f"{m}_present"] = x_clean, present
        batch[m], batch[f"{m}_present"] = x.astype(np.float32), present | ~real
    return batch, clean


@pytest.mark.parametrize("released_code", [False, True])
def test_speaker_streams_give_the_same_logits(released_code):
    batch_np, clean = _one_speaker(make_batch(), make_batch(garbage=False))
    assert (clean["audio_present"].sum(1) <= 1).all() and clean["audio_present"].any()
    fast = AMER(**SMALL, released_code=released_code, speaker_streams=("audio", "text"))
    plain = AMER(**SMALL, released_code=released_code)
    batch = _as_jax(batch_np)
    variables = _variables(plain, batch)
    assert jax.tree.structure(variables) == jax.tree.structure(_variables(fast, batch))
    ref_logits, _ = reference(variables["params"], clean, released_code=released_code)
    with jax.default_matmul_precision("highest"):
        out = jax.jit(lambda v, x: fast.apply(v, x), compiler_options=FAST_COMPILE)(
            variables, batch)
    np.testing.assert_allclose(np.asarray(out["logits"]), ref_logits, rtol=1e-5, atol=1e-5)
