"""A BERT encoder (inference only) and its loading from a HuggingFace-style state dict.

Architecture: embeddings (word + absolute position + token type, then LayerNorm) and N post-LN
layers ``x = LN(x + Attn(x))``, ``x = LN(x + W2 GELU(W1 x))``. Padding keys are masked with
the shared attention core (weight exactly 0). No dropout: the module is for feature extraction.
Layers are stacked with :func:`stack_layers` (params carry a leading ``[num_layers]`` axis).

State-dict names follow the common BERT layout (``embeddings.word_embeddings.weight``,
``encoder.layer.{i}.attention.self.query.weight``, ...; an optional ``bert.`` prefix), linear
weights stored ``[out, in]``. The position-id buffers and the unused pooler are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxaffect.errors import FormatError
from jaxaffect.nn.attention import dot_product_attention, merge_heads, split_heads
from jaxaffect.nn.transformer import GroupDense, GroupLayerNorm, stack_layers

Array = jax.Array
_ACTIVATIONS = {"gelu": False, "gelu_new": True, "gelu_pytorch_tanh": True}  # -> approximate
_SKIPPED = ("embeddings.position_ids", "embeddings.token_type_ids", "pooler.dense.weight",
            "pooler.dense.bias")


@dataclass(frozen=True)
class BertConfig:
    """Sizes of a BERT encoder; ``gelu_approximate`` picks the tanh GELU over the exact one."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_positions: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    gelu_approximate: bool = False

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> BertConfig:
        """From a HuggingFace ``config.json`` dict; raises FormatError on what this encoder
        does not implement."""
        act = config.get("hidden_act", "gelu")
        if act not in _ACTIVATIONS:
            raise FormatError(f"hidden_act={act!r} is not supported (one of "
                              f"{', '.join(_ACTIVATIONS)})")
        pos = config.get("position_embedding_type", "absolute")
        if pos != "absolute":
            raise FormatError(f"position_embedding_type={pos!r}: only 'absolute' is supported")
        try:
            return cls(vocab_size=int(config["vocab_size"]),
                       hidden_size=int(config["hidden_size"]),
                       num_layers=int(config["num_hidden_layers"]),
                       num_heads=int(config["num_attention_heads"]),
                       intermediate_size=int(config["intermediate_size"]),
                       max_positions=int(config.get("max_position_embeddings", 512)),
                       type_vocab_size=int(config.get("type_vocab_size", 2)),
                       layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
                       gelu_approximate=_ACTIVATIONS[act])
        except KeyError as e:
            raise FormatError(f"config has no {e.args[0]!r}") from None


class BertEmbeddings(nn.Module):
    """``LN(word[ids] + position[0..N) + token_type[types])`` for ``ids [B, N]``."""

    config: BertConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, input_ids: Array, token_type_ids: Array) -> Array:
        c = self.config
        init = nn.initializers.normal(0.02)
        word = self.param("word_embeddings", init, (c.vocab_size, c.hidden_size), jnp.float32)
        position = self.param("position_embeddings", init, (c.max_positions, c.hidden_size),
                              jnp.float32)
        token_type = self.param("token_type_embeddings", init,
                                (c.type_vocab_size, c.hidden_size), jnp.float32)
        n = input_ids.shape[-1]
        if n > c.max_positions:
            raise ValueError(f"sequence length {n} > max_positions={c.max_positions}")
        x = word[input_ids] + position[:n] + token_type[token_type_ids]
        return GroupLayerNorm(epsilon=c.layer_norm_eps, dtype=self.dtype, name="norm")(x)


class BertLayer(nn.Module):
    """One post-LN encoder layer on ``x [B, N, d]`` with key mask ``[B, N]``; returns
    ``(x, None)`` for :func:`stack_layers`."""

    config: BertConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, mask: Array) -> tuple[Array, None]:
        c = self.config
        d = c.hidden_size

        def dense(features: int, name: str) -> GroupDense:
            return GroupDense(features, dtype=self.dtype, name=name)

        q, k, v = (split_heads(dense(d, n)(x), c.num_heads) for n in ("query", "key", "value"))
        h = dense(d, "attention_out")(merge_heads(dot_product_attention(q, k, v, mask)))
        x = GroupLayerNorm(epsilon=c.layer_norm_eps, dtype=self.dtype,
                           name="attention_norm")(x + h)
        h = nn.gelu(dense(c.intermediate_size, "intermediate")(x),
                    approximate=c.gelu_approximate)
        h = dense(d, "output")(h)
        return GroupLayerNorm(epsilon=c.layer_norm_eps, dtype=self.dtype,
                              name="output_norm")(x + h), None


class BertEncoder(nn.Module):
    """Token ids ``[B, N]`` and attention mask ``[B, N]`` (1/True = token) -> last hidden
    states ``[B, N, d]``. Padded positions get outputs too; callers mask them out."""

    config: BertConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, input_ids: Array, attention_mask: Array,
                 token_type_ids: Array | None = None) -> Array:
        if token_type_ids is None:
            token_type_ids = jnp.zeros_like(input_ids)
        x = BertEmbeddings(self.config, self.dtype, name="embeddings")(input_ids, token_type_ids)
        layers = stack_layers(BertLayer, num_layers=self.config.num_layers, name="layers",
                              config=self.config, dtype=self.dtype)
        x, _ = layers(x, attention_mask.astype(bool))
        return x


def _linear(prefix: str) -> dict[str, tuple[str, bool]]:
    return {"kernel": (f"{prefix}.weight", True), "bias": (f"{prefix}.bias", False)}


def _norm(prefix: str) -> dict[str, tuple[str, bool]]:
    return {"scale": (f"{prefix}.weight", False), "bias": (f"{prefix}.bias", False)}


_LAYER_NAMES = {
    "query": _linear("attention.self.query"), "key": _linear("attention.self.key"),
    "value": _linear("attention.self.value"), "attention_out": _linear("attention.output.dense"),
    "attention_norm": _norm("attention.output.LayerNorm"),
    "intermediate": _linear("intermediate.dense"), "output": _linear("output.dense"),
    "output_norm": _norm("output.LayerNorm"),
}


def _expected_shapes(config: BertConfig) -> dict[str, tuple[int, ...]]:
    """State-dict name -> shape (as stored, linear weights ``[out, in]``)."""
    d, f = config.hidden_size, config.intermediate_size
    shapes = {"embeddings.word_embeddings.weight": (config.vocab_size, d),
              "embeddings.position_embeddings.weight": (config.max_positions, d),
              "embeddings.token_type_embeddings.weight": (config.type_vocab_size, d),
              "embeddings.LayerNorm.weight": (d,), "embeddings.LayerNorm.bias": (d,)}
    out_in = {"intermediate": (f, d), "output": (d, f)}
    for i in range(config.num_layers):
        for module, names in _LAYER_NAMES.items():
            o, n = out_in.get(module, (d, d))
            for leaf, (name, _) in names.items():
                shape = (o, n) if leaf == "kernel" else (o,)
                shapes[f"encoder.layer.{i}.{name}"] = shape
    return shapes


def _first(names: list[str]) -> str:
    names = sorted(names)
    more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
    return f"{names[0]!r}{more}"


def bert_params_from_state_dict(state: Mapping[str, np.ndarray],
                                config: BertConfig) -> dict[str, Any]:
    """Flax params of :class:`BertEncoder` from a BERT state dict (float32 numpy arrays).

    Raises FormatError naming the first missing or unexpected key, or a wrong shape.
    """
    state = {k.removeprefix("bert."): v for k, v in state.items()}
    expected = _expected_shapes(config)
    missing = [k for k in expected if k not in state]
    if missing:
        raise FormatError(f"missing key {_first(missing)}")
    unexpected = [k for k in state if k not in expected and k not in _SKIPPED]
    if unexpected:
        raise FormatError(f"unexpected key {_first(unexpected)} (not a BERT encoder weight)")
    arrays = {}
    for key, shape in expected.items():
        value = np.asarray(state[key])
        if value.shape != shape:
            raise FormatError(f"{key}: shape {list(value.shape)}, the config needs {list(shape)}")
        if not np.issubdtype(value.dtype, np.floating):
            raise FormatError(f"{key}: dtype {value.dtype}, expected floating point")
        arrays[key] = value.astype(np.float32)

    def layer_leaf(name: str, transpose: bool) -> np.ndarray:
        stack = [arrays[f"encoder.layer.{i}.{name}"] for i in range(config.num_layers)]
        return np.stack([w.T if transpose else w for w in stack])

    embeddings = {name: arrays[f"embeddings.{name}.weight"] for name in
                  ("word_embeddings", "position_embeddings", "token_type_embeddings")}
    embeddings["norm"] = {"scale": arrays["embeddings.LayerNorm.weight"],
                          "bias": arrays["embeddings.LayerNorm.bias"]}
    layers = {module: {leaf: layer_leaf(name, transpose)
                       for leaf, (name, transpose) in names.items()}
              for module, names in _LAYER_NAMES.items()}
    return {"embeddings": embeddings, "layers": layers}
