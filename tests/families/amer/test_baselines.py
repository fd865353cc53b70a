"""Tests of the MEmoR Table 3 baselines (jaxaffect.families.amer.fusion_baselines, .dialogue_gcn).

Pure pieces against numpy / loop references (jitted and un-jitted); every model: jitted equals
un-jitted, padding and absent entries never matter, modality subsets build, run and ignore the
unused streams; MDAE's corruption is deterministic and train-only.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.families.amer.dialogue_gcn import (
    NUM_RELATIONS,
    DialogueGCN,
    relation_adjacency,
    relational_aggregate,
)
from jaxaffect.families.amer.fusion_baselines import (
    MDAE,
    MDL,
    BiLSTMLMF,
    BiLSTMTFN,
    corruption_keep,
    low_rank_fusion,
    reconstruction_loss,
    tensor_fusion,
)

DIMS = {"audio": 7, "text": 6, "visual": 5}
DP = 4
C = 5
SMALL = dict(num_classes=C, audio_sizes=(12, 8), text_sizes=(10, 8), visual_sizes=(9, 8),
             personality_sizes=(6,), classifier_sizes=(7,))
MODELS = {
    "mdl": lambda **kw: MDL(**SMALL, **kw),
    "mdae": lambda **kw: MDAE(**SMALL, shared_size=8, **kw),
    "tfn": lambda **kw: BiLSTMTFN(**SMALL, lstm_features=4, tfn_size=3, fusion_size=8, **kw),
    "lmf": lambda **kw: BiLSTMLMF(**SMALL, lstm_features=4, rank=3, fusion_size=8, **kw),
    "gcn": lambda **kw: DialogueGCN(**SMALL, gru_features=4, graph_features=8, window=2, **kw),
}


def _batch(seed: int = 0, b: int = 3, p: int = 3, s: int = 6) -> dict[str, np.ndarray]:
    """A batch whose example 1 has 2 real persons and 4 real segments (the rest padding)."""
    rng = np.random.default_rng(seed)
    person_mask = np.ones((b, p), bool)
    segment_mask = np.ones((b, s), bool)
    person_mask[1, 2:] = False
    segment_mask[1, 4:] = False
    real = person_mask[:, :, None] & segment_mask[:, None, :]
    batch = {m: rng.normal(size=(b, p, s, d)).astype(np.float32) for m, d in DIMS.items()}
    for m in DIMS:
        batch[f"{m}_present"] = (rng.random((b, p, s)) > 0.35) & real
        batch[f"{m}_present"][0, 0, 2] = True  # example 0's target entry has every modality
    batch["audio_present"][2, 1, 0] = False  # example 2's target entry has no audio
    for m in DIMS:
        batch[m] = batch[m] * batch[f"{m}_present"][..., None]
    batch.update(
        person_mask=person_mask, segment_mask=segment_mask,
        personality=rng.normal(size=(b, p, DP)).astype(np.float32),
        persons=np.where(person_mask, np.arange(p)[None], -1).astype(np.int32),
        target_person=np.array([0, 1, 1][:b], np.int32),
        target_segment=np.array([2, 3, 0][:b], np.int32))
    return batch


def _pad(batch: dict[str, np.ndarray], extra_p: int = 2, extra_s: int = 3, seed: int = 7
         ) -> dict[str, np.ndarray]:
    """More padded persons / segments holding garbage (also garbage presence flags), and garbage
    in every absent entry of the real ones."""
    rng = np.random.default_rng(seed)
    out = dict(batch)
    b, p, s = batch["audio_present"].shape
    for m, d in DIMS.items():
        x = rng.normal(scale=50.0, size=(b, p + extra_p, s + extra_s, d)).astype(np.float32)
        pres = rng.random((b, p + extra_p, s + extra_s)) > 0.5
        x[:, :p, :s] = np.where(batch[f"{m}_present"][..., None], batch[m], x[:, :p, :s])
        pres[:, :p, :s] = batch[f"{m}_present"]
        out[m], out[f"{m}_present"] = x, pres
    pers = rng.normal(scale=50.0, size=(b, p + extra_p, DP)).astype(np.float32)
    real_p = batch["person_mask"]
    pers[:, :p] = np.where(real_p[..., None], batch["personality"], pers[:, :p])
    out["personality"] = pers
    out["person_mask"] = np.pad(batch["person_mask"], ((0, 0), (0, extra_p)))
    out["segment_mask"] = np.pad(batch["segment_mask"], ((0, 0), (0, extra_s)))
    out["persons"] = np.pad(batch["persons"], ((0, 0), (0, extra_p)), constant_values=-1)
    return out


def _init(model, batch, seed: int = 0):
    """Random parameters of the right shapes, drawn with numpy (compiling ``init`` is slow)."""
    shapes = jax.eval_shape(lambda: model.init(
        {"params": jax.random.key(0), "dropout": jax.random.key(1)}, batch))
    rng = np.random.default_rng(seed)

    def draw(s):
        fan_in = s.shape[-2] if len(s.shape) >= 2 else 10
        return jnp.asarray(rng.normal(scale=1.0 / np.sqrt(fan_in), size=s.shape)
                           .astype(np.float32))

    return jax.tree.map(draw, shapes)


_JITTED: dict = {}


def _run(model, params, batch, jit: bool, train: bool = False, key=None):
    """``model.apply`` (jitted: compiled once per model and ``train``) -> numpy outputs."""
    rngs = None if key is None else {"dropout": key}
    fn = lambda v, b, r: model.apply(v, b, train=train, rngs=r)
    if jit:  # the model is kept in the value, so its id stays unique
        fn = _JITTED.setdefault((id(model), train), (model, jax.jit(fn)))[1]
    out = fn(params, jax.tree.map(jnp.asarray, batch), rngs)
    return {k: np.asarray(v) for k, v in out.items()}


# --- pure pieces --------------------------------------------------------------------------------

@pytest.mark.parametrize("jit", [False, True])
def test_tensor_fusion_is_kron_of_one_padded_vectors(jit):
    rng = np.random.default_rng(1)
    zs = [rng.normal(size=(4, d)).astype(np.float32) for d in (2, 3, 4)]
    fn = jax.jit(tensor_fusion) if jit else tensor_fusion
    for k in (1, 2, 3):
        out = np.asarray(fn([jnp.asarray(z) for z in zs[:k]]))
        for b in range(4):
            ref = np.ones(1, np.float32)
            for z in zs[:k]:
                ref = np.kron(ref, np.concatenate([[1.0], z[b]]))
            np.testing.assert_allclose(out[b], ref, rtol=1e-6, atol=1e-6)
        assert out.shape == (4, int(np.prod([d + 1 for d in (2, 3, 4)[:k]])))


@pytest.mark.parametrize("jit", [False, True])
def test_low_rank_fusion_matches_loop_over_ranks(jit):
    rng = np.random.default_rng(2)
    r, o = 3, 5
    zs = [rng.normal(size=(4, d)).astype(np.float32) for d in (2, 3, 4)]
    ws = [rng.normal(size=(r, d + 1, o)).astype(np.float32) for d in (2, 3, 4)]
    bias = rng.normal(size=(o,)).astype(np.float32)
    fn = jax.jit(low_rank_fusion) if jit else low_rank_fusion
    out = np.asarray(fn([jnp.asarray(z) for z in zs], [jnp.asarray(w) for w in ws],
                        jnp.asarray(bias)))
    ref = np.tile(bias, (4, 1)).astype(np.float64)
    for i in range(r):
        term = np.ones((4, o))
        for z, w in zip(zs, ws):
            term = term * (np.concatenate([np.ones((4, 1)), z], 1) @ w[i])
        ref += term
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    # rank-1 LMF of one modality is an affine map of z
    one = np.asarray(fn([jnp.asarray(zs[0])], [jnp.asarray(ws[0][:1])], jnp.asarray(bias)))
    np.testing.assert_allclose(one, zs[0] @ ws[0][0, 1:] + ws[0][0, 0] + bias, rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("jit", [False, True])
def test_relation_adjacency_matches_loop_over_node_pairs(jit):
    rng = np.random.default_rng(3)
    b, p, s, window = 2, 3, 7, 2
    mask = rng.random((b, p, s)) > 0.2
    mask[1, 2] = False  # a padded person
    fn = jax.jit(relation_adjacency, static_argnums=1) if jit else relation_adjacency
    out = np.asarray(fn(jnp.asarray(mask), window))
    ref = np.full((b, p * s, p * s), -1)
    for bi, (pi, si, pj, sj) in itertools.product(range(b), itertools.product(
            range(p), range(s), range(p), range(s))):
        if mask[bi, pi, si] and mask[bi, pj, sj] and abs(si - sj) <= window:
            ref[bi, pi * s + si, pj * s + sj] = 2 * (pi != pj) + (sj > si)
    np.testing.assert_array_equal(out, ref)
    assert set(np.unique(out)) == {-1, 0, 1, 2, 3}
    assert np.all(out[1, 2 * s:] == -1) and np.all(out[1, :, 2 * s:] == -1)


@pytest.mark.parametrize("jit", [False, True])
def test_relational_aggregate_matches_loop(jit):
    rng = np.random.default_rng(4)
    b, n, e = 2, 6, 3
    rel = rng.integers(-1, NUM_RELATIONS, size=(b, n, n))
    alpha = rng.random((b, n, n)).astype(np.float32)
    msg = rng.normal(size=(b, n, NUM_RELATIONS, e)).astype(np.float32)
    fn = jax.jit(relational_aggregate) if jit else relational_aggregate
    out = np.asarray(fn(jnp.asarray(msg), jnp.asarray(rel), jnp.asarray(alpha)))
    ref = np.zeros((b, n, e))
    for bi, i, j in itertools.product(range(b), range(n), range(n)):
        r = rel[bi, i, j]
        if r >= 0:
            ref[bi, i] += alpha[bi, i, j] / np.sum(rel[bi, i] == r) * msg[bi, j, r]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_reconstruction_loss_hand_case(jit):
    recons = [jnp.array([[1.0, 1.0], [0.0, 0.0], [5.0, 5.0]]), jnp.array([[0.0], [2.0], [9.0]])]
    targets = [jnp.array([[0.0, 3.0], [0.0, 0.0], [0.0, 0.0]]), jnp.array([[0.0], [0.0], [1.0]])]
    present = jnp.array([[True, True], [False, True], [False, False]])
    fn = jax.jit(reconstruction_loss) if jit else reconstruction_loss
    # example 0: audio mse (1 + 4) / 2 = 2.5, text 0 -> 1.25; example 1: text only, 4; none: 0
    np.testing.assert_allclose(np.asarray(fn(recons, targets, present)), [1.25, 4.0, 0.0],
                               rtol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_corruption_keep_is_deterministic_subset_and_keeps_one(jit):
    rng = np.random.default_rng(5)
    present = jnp.asarray(rng.random((3000, 3)) > 0.2)
    fn = jax.jit(corruption_keep) if jit else corruption_keep
    keep = np.asarray(fn(jax.random.key(0), present, 0.3))
    np.testing.assert_array_equal(keep, np.asarray(fn(jax.random.key(0), present, 0.3)))
    assert not np.array_equal(keep, np.asarray(fn(jax.random.key(1), present, 0.3)))
    pres = np.asarray(present)
    assert not np.any(keep & ~pres)
    np.testing.assert_array_equal(keep.any(-1), pres.any(-1))
    dropped = np.sum(pres & ~keep) / np.sum(pres)
    assert 0.2 < dropped < 0.3  # 0.3 minus the restored "keep one" cases
    one = np.asarray(fn(jax.random.key(2), present, 1.0))  # drop all -> exactly one survives
    np.testing.assert_array_equal(one.sum(-1), pres.any(-1).astype(int))
    np.testing.assert_array_equal(np.asarray(fn(jax.random.key(2), present, 0.0)), pres)


# --- models -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MODELS))
def test_jit_equals_eager_and_padding_and_absent_entries_do_not_matter(name):
    model = MODELS[name]()
    batch = _batch()
    params = _init(model, batch)
    jitted = _run(model, params, batch, jit=True)
    assert jitted["logits"].shape == (3, C) and jitted["logits"].dtype == np.float32
    assert set(jitted) == ({"logits", "aux_loss"} if name == "mdae" else {"logits"})
    # garbage in absent entries and padded slots, same shape (compiled once)
    garbage = _run(model, params, _pad(batch, extra_p=0, extra_s=0), jit=True)
    # un-jitted, with two more padded persons and three more padded segments of garbage
    eager = _run(model, params, _pad(batch), jit=False)
    for k in jitted:
        assert np.all(np.isfinite(jitted[k]))
        np.testing.assert_allclose(garbage[k], jitted[k], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(eager[k], jitted[k], rtol=1e-4, atol=1e-5)
    # the real entries do matter: change a present entry of example 0's target person
    changed = {k: v.copy() for k, v in batch.items()}
    changed["text"][0, 0, 2] += 1.0
    moved = _run(model, params, changed, jit=True)
    assert not np.allclose(moved["logits"][0], jitted["logits"][0], atol=1e-6)
    np.testing.assert_allclose(moved["logits"][1:], jitted["logits"][1:], rtol=1e-5, atol=1e-6)


# one single modality or pair per model (all three: the test above; every subset of the fusion
# functions: the pure tests)
SUBSETS = [("mdl", ("audio",)), ("mdae", ("visual", "text")), ("tfn", ("audio", "visual")),
           ("lmf", ("text",)), ("gcn", ("audio", "text"))]


@pytest.mark.parametrize(("name", "mods"), SUBSETS)
def test_modality_subsets_run_and_ignore_unused_streams(name, mods):
    batch = _batch(seed=1)
    model = MODELS[name](modalities=mods, use_personality=False)
    params = _init(model, batch)
    assert ("enc_audio" in params["params"]) == ("audio" in mods)
    assert "enc_personality" not in params["params"]
    out = _run(model, params, batch, jit=True)["logits"]
    assert out.shape == (3, C) and np.all(np.isfinite(out))
    noisy = {k: v.copy() for k, v in batch.items()}
    for m in DIMS:
        if m not in mods:
            noisy[m] = noisy[m] + 3.0
            noisy[f"{m}_present"] = ~noisy[f"{m}_present"]
    np.testing.assert_allclose(_run(model, params, noisy, jit=True)["logits"], out,
                               rtol=1e-6, atol=1e-6)


def test_personality_of_the_target_person_only():
    model = MODELS["mdl"](use_personality=True)
    batch = _batch(seed=2)
    params = _init(model, batch)
    assert params["params"]["enc_personality"]["layers_0"]["kernel"].shape == (DP, 6)
    base = _run(model, params, batch, jit=False)["logits"]
    other = {k: v.copy() for k, v in batch.items()}
    other["personality"][0, 1:] += 5.0  # example 0's target is person 0
    np.testing.assert_allclose(_run(model, params, other, jit=False)["logits"], base, rtol=1e-6)
    other["personality"][0, 0] += 5.0
    assert not np.allclose(_run(model, params, other, jit=False)["logits"][0], base[0])


def test_mdae_corruption_is_train_only_and_deterministic():
    model = MODELS["mdae"](corrupt=1.0)  # every example keeps exactly one present modality
    batch = _batch(seed=3)
    params = _init(model, batch)
    clean = _run(model, params, batch, jit=True, key=jax.random.key(9))
    other = _run(model, params, batch, jit=True, key=jax.random.key(3))
    for k in clean:  # train=False: the rng is not used
        np.testing.assert_array_equal(other[k], clean[k])
    a = _run(model, params, batch, jit=True, train=True, key=jax.random.key(0))
    b = _run(model, params, batch, jit=True, train=True, key=jax.random.key(0))
    for k in a:
        np.testing.assert_array_equal(b[k], a[k])
    # example 0 has all three modalities at its target: two are dropped, so its output moves;
    # the reconstruction targets stay the clean inputs, so its aux_loss moves too
    assert not np.allclose(a["logits"][0], clean["logits"][0], atol=1e-6)
    assert not np.allclose(a["aux_loss"][0], clean["aux_loss"][0], atol=1e-6)
    assert np.all(a["aux_loss"] >= 0) and np.all(clean["aux_loss"] > 0)


def test_default_sizes_and_param_names():
    batch = _batch()
    keys = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
    shapes = {name: jax.eval_shape(cls(num_classes=14).init, keys, batch)["params"]
              for name, cls in [("mdl", MDL), ("mdae", MDAE), ("tfn", BiLSTMTFN),
                                ("lmf", BiLSTMLMF), ("gcn", DialogueGCN)]}
    for p in shapes.values():
        assert p["enc_audio"]["layers_0"]["kernel"].shape == (DIMS["audio"], 1024)
        assert p["enc_text"]["layers_2"]["kernel"].shape == (384, 256)
        assert p["enc_personality"]["layers_1"]["kernel"].shape == (512, 256)
        assert p["classifier"]["layers_1"]["kernel"].shape == (256, 14)
    assert shapes["mdl"]["classifier"]["layers_0"]["kernel"].shape == (3 * 256 + 256, 256)
    assert shapes["mdae"]["dec_audio"]["layers_2"]["kernel"].shape == (1024, DIMS["audio"])
    assert shapes["tfn"]["post_fusion"]["kernel"].shape == (33 ** 3, 256)
    assert shapes["tfn"]["tfn_proj_text"]["kernel"].shape == (256, 32)
    assert shapes["lmf"]["lmf_factor_visual"].shape == (4, 257, 256)
    assert shapes["gcn"]["rgcn_relations"].shape == (4, 256, 256)
    assert shapes["gcn"]["classifier"]["layers_0"]["kernel"].shape == (256 + 256 + 256, 256)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_bfloat16_compute_gives_float32_outputs(name):
    model = MODELS[name](dtype=jnp.bfloat16)
    batch = jax.tree.map(jnp.asarray, _batch())
    keys = {"params": jax.random.key(0), "dropout": jax.random.key(1)}
    params = jax.eval_shape(model.init, keys, batch)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
    out = jax.eval_shape(lambda v, b: model.apply(v, b, train=True, rngs=keys), params, batch)
    assert out["logits"].shape == (3, C) and out["logits"].dtype == jnp.float32
    if name == "mdae":
        assert out["aux_loss"].shape == (3,) and out["aux_loss"].dtype == jnp.float32
