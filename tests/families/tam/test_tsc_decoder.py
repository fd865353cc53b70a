"""Tests of the video-TSC decoder and the TAM pretraining wrapper (TAM Sec. 4.2, Eqs. 7-8)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxaffect.families.tam.ctm import CTMEncoder
from jaxaffect.families.tam.tsc_decoder import TAMPretrainModel, TSCDecoderLayer, VideoTSCDecoder
from jaxaffect.families.tam.tsc_objectives import appearing_time_logits, pretraining_loss
from jaxaffect.nn.transformer import GroupLayerNorm
from jaxaffect.testing import random_variables

B, N, W, T, WIDTH, HEADS, LAYERS, VOCAB = 2, 3, 6, 5, 16, 2, 3, 40
DIMS = {"image": 6, "motion": 8, "audio": 4}
WORD_LENGTHS = np.array([[6, 4, 2], [5, 6, 0]])  # the last comment of video 1 is all padding
SEG_LENGTHS = (5, 3)

JIT = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0,
                                                   "xla_llvm_disable_expensive_passes": True})
DECODER = VideoTSCDecoder(vocab_size=VOCAB, width=WIDTH, num_layers=LAYERS, num_heads=HEADS,
                          max_words=8, dropout_rate=0.1)
MODEL = TAMPretrainModel(
    decoder=VideoTSCDecoder(vocab_size=VOCAB, width=WIDTH, num_layers=2, num_heads=HEADS,
                            max_words=8, dropout_rate=0.1),
    encoder=CTMEncoder(width=WIDTH, num_layers=1, num_heads=HEADS, max_segments=8,
                       dropout_rate=0.1))
DEC_APPLY = JIT(DECODER.apply)
MODEL_APPLY = JIT(MODEL.apply)


def make_tokens(seed: int = 0, pad_value: int = 0):
    rng = np.random.default_rng(seed)
    mask = np.arange(W)[None, None, :] < WORD_LENGTHS[..., None]
    ids = rng.integers(1, VOCAB, (B, N, W))
    return jnp.asarray(np.where(mask, ids, pad_value), jnp.int32), jnp.asarray(mask)


def make_video(seed: int = 1, pad_value: float = 0.0):
    rng = np.random.default_rng(seed)
    seg = np.arange(T)[None, :] < np.asarray(SEG_LENGTHS)[:, None]
    vmask = np.concatenate([np.ones((B, 1), bool), seg], axis=1)
    video = rng.standard_normal((B, T + 1, WIDTH)).astype(np.float32)
    video = np.where(vmask[..., None], video, pad_value).astype(np.float32)
    return jnp.asarray(video), jnp.asarray(vmask)


def make_features(seed: int = 2):
    rng = np.random.default_rng(seed)
    seg = np.arange(T)[None, :] < np.asarray(SEG_LENGTHS)[:, None]
    feats = {m: jnp.asarray(np.where(seg[..., None], rng.standard_normal((B, T, d)), 0.0),
                            jnp.float32) for m, d in DIMS.items()}
    return feats, jnp.asarray(seg)


def dec_vars():
    ids, wmask = make_tokens()
    video, vmask = make_video()
    return random_variables(DECODER, ids, video, vmask)


def model_vars():
    feats, seg = make_features()
    ids, _ = make_tokens()
    return random_variables(MODEL, feats, seg, ids)


def test_decoder_shapes_and_jit_matches_eager():
    ids, wmask = make_tokens()
    video, vmask = make_video()
    variables = dec_vars()
    out = DEC_APPLY(variables, ids, video, vmask, word_mask=wmask)
    expected = {"hidden": (B, N, W, WIDTH), "first_word": (B, N, WIDTH),
                "time_query": (B, N, WIDTH), "time_keys": (B, T + 1, WIDTH)}
    assert {k: v.shape for k, v in out.items()} == expected
    assert all(v.dtype == jnp.float32 for v in out.values())
    params = variables["params"]
    assert params["layers"]["self_attention"]["query"]["kernel"].shape == (LAYERS, WIDTH, WIDTH)
    assert params["position_embedding"].shape == (8, WIDTH)
    eager = DECODER.apply(variables, ids, video, vmask, word_mask=wmask)
    for k in expected:
        np.testing.assert_allclose(np.asarray(eager[k]), np.asarray(out[k]), atol=2e-5,
                                   rtol=2e-5)
        assert np.isfinite(np.asarray(out[k])).all()


def test_single_comment_input_matches_batched():
    ids, wmask = make_tokens()
    video, vmask = make_video()
    variables = dec_vars()
    full = DEC_APPLY(variables, ids, video, vmask, word_mask=wmask)
    one = JIT(DECODER.apply)(variables, ids[:, 0], video, vmask, word_mask=wmask[:, 0])
    assert one["hidden"].shape == (B, W, WIDTH) and one["time_query"].shape == (B, WIDTH)
    for k in ("hidden", "first_word", "time_query"):
        np.testing.assert_allclose(np.asarray(one[k]), np.asarray(full[k][:, 0]), atol=1e-5)
    np.testing.assert_allclose(np.asarray(one["time_keys"]), np.asarray(full["time_keys"]),
                               atol=1e-6)


def test_padding_does_not_change_real_outputs_and_attention_is_bidirectional():
    ids, wmask = make_tokens()
    video, vmask = make_video()
    variables = dec_vars()
    base = DEC_APPLY(variables, ids, video, vmask, word_mask=wmask)
    # other ids at padded words, other values at padded video segments
    ids2, _ = make_tokens(pad_value=7)
    video2, _ = make_video(pad_value=3.0)
    other = DEC_APPLY(variables, ids2, video2, vmask, word_mask=wmask)
    m = np.asarray(wmask)
    np.testing.assert_allclose(np.asarray(other["hidden"])[m], np.asarray(base["hidden"])[m],
                               atol=1e-5)
    real = WORD_LENGTHS > 0
    for k in ("first_word", "time_query"):
        np.testing.assert_allclose(np.asarray(other[k])[real], np.asarray(base[k])[real],
                                   atol=1e-5)
    assert np.isfinite(np.asarray(other["hidden"])).all()
    # a LATER real word changes the first word's g: self-attention is not causal
    ids3 = ids.at[0, 0, 3].set((ids[0, 0, 3] % (VOCAB - 1)) + 1)
    changed = DEC_APPLY(variables, ids3, video, vmask, word_mask=wmask)
    assert np.abs(np.asarray(changed["first_word"][0, 0] - base["first_word"][0, 0])).max() > 1e-4
    # the video matters (cross-attention): changing a real segment changes the words
    video4 = video.at[:, 1].add(1.0)
    changed = DEC_APPLY(variables, ids, video4, vmask, word_mask=wmask)
    assert np.abs(np.asarray(changed["hidden"] - base["hidden"])[m]).max() > 1e-4


def test_scan_equals_layer_by_layer():
    ids, wmask = make_tokens()
    video, vmask = make_video()
    variables = dec_vars()
    params = variables["params"]
    out = DEC_APPLY(variables, ids, video, vmask, word_mask=wmask)
    layer = TSCDecoderLayer(num_heads=HEADS, mlp_dim=4 * WIDTH)
    layer_apply = JIT(layer.apply)
    x = jnp.take(params["word_embedding"], ids, axis=0) + params["position_embedding"][:W]
    firsts = []
    for i in range(LAYERS):
        p = jax.tree_util.tree_map(lambda a, i=i: a[i], params["layers"])
        x, ys = layer_apply({"params": p}, x, (wmask, video, vmask))
        firsts.append(ys)
    x = GroupLayerNorm().apply({"params": params["final_norm"]}, x)
    np.testing.assert_allclose(np.asarray(x), np.asarray(out["hidden"]), atol=1e-5)
    g, g_hat, f_tilde = firsts[0]
    np.testing.assert_allclose(np.asarray(g), np.asarray(out["first_word"]), atol=1e-5)
    np.testing.assert_allclose(np.asarray(g_hat), np.asarray(out["time_query"]), atol=1e-5)
    np.testing.assert_allclose(np.asarray(f_tilde), np.asarray(out["time_keys"]), atol=1e-5)
    # Eq. 8's projections are layer 0's cross-attention W_k (keys) / W_q on LN(g) (query)
    cross = params["layers"]["cross_attention"]
    np.testing.assert_allclose(np.asarray(out["time_keys"]),
                               np.asarray(video @ cross["key"]["kernel"][0]), atol=1e-5)
    norm = jax.tree_util.tree_map(lambda a: a[0], params["layers"]["norm_cross"])
    ln_g = GroupLayerNorm().apply({"params": norm}, out["first_word"])
    np.testing.assert_allclose(np.asarray(out["time_query"]),
                               np.asarray(ln_g @ cross["query"]["kernel"][0]), atol=1e-5)


def test_model_outputs_padded_segments_and_encoder_params():
    feats, seg = make_features()
    ids, wmask = make_tokens()
    variables = model_vars()
    assert set(variables["params"]) == {"encoder", "decoder", "word_head"}
    out = MODEL_APPLY(variables, feats, seg, ids)
    assert out["word_logits"].shape == (B, N, W, VOCAB)
    assert out["time_logits"].shape == (B, N, T)
    probs = np.asarray(jax.nn.softmax(out["time_logits"], axis=-1))
    assert (probs[1, :, SEG_LENGTHS[1]:] == 0.0).all()  # padded segments: probability 0
    assert (probs[1, :, :SEG_LENGTHS[1]] > 0).all()
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    # fine-tuning takes params["encoder"] alone: the encoder reproduces the time logits
    enc = MODEL.encoder.apply({"params": variables["params"]["encoder"]}, feats, seg)
    vmask = jnp.concatenate([jnp.ones((B, 1), bool), seg], axis=1)
    dec = JIT(MODEL.decoder.apply)({"params": variables["params"]["decoder"]}, ids,
                                   enc["video"], vmask)
    np.testing.assert_allclose(
        np.asarray(appearing_time_logits(dec["time_query"], dec["time_keys"], vmask)),
        np.asarray(out["time_logits"]), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(enc["pooled"]), np.asarray(out["pooled"]), atol=1e-5)


def _norm(tree) -> float:
    return float(sum(np.square(np.asarray(x)).sum() for x in jax.tree_util.tree_leaves(tree)))


def test_gradients_reach_encoder_and_decoder_for_each_task():
    feats, seg = make_features()
    ids, wmask = make_tokens()
    variables = model_vars()
    rng = np.random.default_rng(3)
    batch = {"target_ids": jnp.asarray(rng.integers(1, VOCAB, (B, N, W)), jnp.int32),
             "target_mask": wmask & (jnp.arange(W) % 2 == 1),
             "segment_index": jnp.asarray([[0, 4, 2], [1, 2, 0]], jnp.int32),
             "comment_mask": jnp.asarray(WORD_LENGTHS > 0)}

    def losses(params, dropout_key):
        out = MODEL.apply({"params": params}, feats, seg, ids, train=True,
                          rngs={"dropout": dropout_key})
        return jnp.stack([pretraining_loss(out, batch, tasks=(t,))[0] for t in ("word", "time")])

    jac = JIT(jax.jacrev(losses))(variables["params"], jax.random.key(0))
    for i, task in enumerate(("word", "time")):
        grads = jax.tree_util.tree_map(lambda g, i=i: g[i], jac)
        leaves = jax.tree_util.tree_leaves(grads)
        assert all(np.isfinite(np.asarray(x)).all() for x in leaves), task
        assert _norm(grads["encoder"]) > 0, task
        assert _norm(grads["decoder"]["layers"]) > 0, task
    word = jax.tree_util.tree_map(lambda g: g[0], jac)
    time = jax.tree_util.tree_map(lambda g: g[1], jac)
    assert _norm(word["word_head"]) > 0 and _norm(time["word_head"]) == 0
    # the time task reads only the first decoder layer's self-attention and cross W_q/W_k
    assert _norm(time["decoder"]["final_norm"]) == 0
    assert _norm(jax.tree_util.tree_map(lambda a: a[1:], time["decoder"]["layers"])) == 0


def test_word_positions_gather_the_same_logits():
    feats, seg = make_features()
    ids, _ = make_tokens()
    variables = model_vars()
    full = MODEL_APPLY(variables, feats, seg, ids)["word_logits"]
    n_words = ids.shape[1] * ids.shape[2]
    rng = np.random.default_rng(0)
    positions = rng.integers(-1, n_words, size=(B, 5))
    for apply in (MODEL.apply, MODEL_APPLY):
        part = apply(variables, feats, seg, ids, word_positions=jnp.asarray(positions))
        assert part["word_logits"].shape == (B, 5, VOCAB)
        flat = np.asarray(full).reshape(B, n_words, VOCAB)
        expect = flat[np.arange(B)[:, None], np.clip(positions, 0, None)]
        np.testing.assert_allclose(np.asarray(part["word_logits"]), expect, atol=1e-5)
