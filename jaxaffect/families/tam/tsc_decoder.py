"""Video-TSC decoder of TAM's time-sync-comment pretraining (Sec. 4.2, Fig. 2) and its wrapper.

The decoder reads the word embeddings of time-sync comments (TSCs) and the CTM ``video``
representation and returns the comments' word features in the video context:

* input: ``token_ids [B, N, W]`` (N comments of W words per video; each comment attends to its
  own video) or ``[B, W]`` (one comment per video; outputs then lack the N axis). Word 0 is the
  start token ``[#S]`` (Fig. 2). Embedding: a word table plus a learned position table of
  ``max_words`` rows, both N(0, 0.02^2).
* L = 8 pre-norm layers (Sec. 5.2), each: self-attention over the comment's words (first
  multi-head attention block), cross-attention from the words to the video tokens (second
  block), FFN; then a final LayerNorm. The layers are stacked with ``stack_layers`` (``nn.scan``).

Choices where the paper is silent or ambiguous (also in the README table):

* Self-attention is bidirectional (no causal mask): the decoder fills masked words, it does
  not generate text, and Eq. 7 conditions on all other words ``w^{\\m}``. "Transformer decoder"
  is read as "self-attention + cross-attention to the video", not "causal".
* Eq. 8's ``g`` is the first word's output of the first multi-head attention block (the
  self-attention block, residual included) of the FIRST decoder layer; "the projections of g
  in query domain and f in key domain" are the query and key projections of that layer's
  cross-attention (the second block), so ``g_hat = W_q LN(g)`` (pre-norm input of the block)
  and ``f_tilde = W_k f``. The decoder returns ``first_word`` (g), ``time_query`` (g_hat) and
  ``time_keys`` (f_tilde of all T+1 video positions); Eq. 8 itself is
  :func:`jaxaffect.families.tam.tsc_objectives.appearing_time_logits`.
* Multi-head attention with ``s = sqrt(d / H)``; Q/K/V/out projections have no bias (as in the
  CTM blocks); FFN 4d with exact GELU; dropout on embeddings and residual branches.
* The cross-attention attends to all T+1 video tokens (the learnable-token position included,
  padded segments masked as keys).
* The word classifier of Eq. 7 is a separate Dense layer on the final hidden states (the paper
  says "a classifier"; not tied to the input embedding).

Tensor parallelism (:mod:`jaxaffect.nn.partitioning`): attention projections split by heads,
the FFN by its hidden units (the shared blocks' rules), the word embedding and the word
classifier (and its logits) along the vocabulary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxaffect.families.tam.ctm import CTMEncoder
from jaxaffect.families.tam.tsc_objectives import appearing_time_logits
from jaxaffect.nn.attention import dot_product_attention, merge_heads, split_heads
from jaxaffect.nn.partitioning import EMBED, HEADS, VOCAB, batch_axes, constrain, param_axes
from jaxaffect.nn.transformer import (
    FeedForward,
    GroupDense,
    GroupLayerNorm,
    SelfAttention,
    constrain_heads,
    stack_layers,
)

Array = jax.Array
# (word_mask [B, N, W], video [B, T+1, d], video_mask [B, T+1]), broadcast to every layer
DecoderContext = tuple[Array, Array, Array]


class CrossAttention(nn.Module):
    """Multi-head attention from words ``x [B, N, W, d]`` to ``video [B, K, dv]``.

    ``video_mask [B, K]`` marks real keys. Returns ``(out [B, N, W, d], q [B, N, W, d],
    k [B, K, d])``; ``q`` and ``k`` are the full-width projections (before the head split),
    used by the appearing-time task. No biases.
    """

    num_heads: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, video: Array, video_mask: Array
                 ) -> tuple[Array, Array, Array]:
        d = x.shape[-1]

        def dense(name: str, axes: tuple[str, str] = (EMBED, HEADS)) -> GroupDense:
            return GroupDense(d, use_bias=False, dtype=self.dtype, axes=axes, name=name)

        def heads(y: Array) -> Array:
            return constrain_heads(split_heads(y, self.num_heads))

        q = dense("query")(x)
        k = dense("key")(video)
        v = dense("value")(video)
        # the video axis gets a singleton comment axis, broadcast over the N comments
        out = dot_product_attention(heads(q), heads(k)[:, None], heads(v)[:, None],
                                    video_mask[:, None, :])
        return dense("out", (HEADS, EMBED))(merge_heads(constrain_heads(out))), q, k


class TSCDecoderLayer(nn.Module):
    """One pre-norm decoder layer: ``(x [B, N, W, d], context) -> (x, (g, g_hat, f_tilde))``.

    ``context = (word_mask [B, N, W], video [B, K, dv], video_mask [B, K])``. The per-layer
    outputs are the first word after the self-attention block ``g [B, N, d]``, its cross-
    attention query ``g_hat [B, N, d]`` and the cross-attention keys ``f_tilde [B, K, d]``
    (``nn.scan`` stacks them over layers; the decoder keeps layer 0's).
    """

    num_heads: int
    mlp_dim: int
    dropout_rate: float = 0.0
    deterministic: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, context: DecoderContext
                 ) -> tuple[Array, tuple[Array, Array, Array]]:
        word_mask, video, video_mask = context
        drop = nn.Dropout(self.dropout_rate, deterministic=self.deterministic)
        h = GroupLayerNorm(dtype=self.dtype, name="norm_self")(x)
        h = SelfAttention(self.num_heads, dtype=self.dtype, name="self_attention")(h, word_mask)
        x = x + drop(h)
        g = x[:, :, 0]
        h = GroupLayerNorm(dtype=self.dtype, name="norm_cross")(x)
        h, q, k = CrossAttention(self.num_heads, self.dtype, name="cross_attention")(
            h, video.astype(self.dtype), video_mask)
        x = x + drop(h)
        h = GroupLayerNorm(dtype=self.dtype, name="norm_mlp")(x)
        h = FeedForward(self.mlp_dim, 0, self.dropout_rate, self.deterministic, self.dtype,
                        name="mlp")(h)
        x = (x + drop(h)).astype(self.dtype)
        return x, (g.astype(jnp.float32), q[:, :, 0].astype(jnp.float32),
                   k.astype(jnp.float32))


class VideoTSCDecoder(nn.Module):
    """Transformer decoder over TSC words with cross-attention to the video (Sec. 4.2).

    ``__call__(token_ids [B, N, W] or [B, W], video [B, T+1, dv], video_mask [B, T+1], *,
    word_mask=None, train=False)`` returns float32 ``dict(hidden=[B, N, W, d] (final layer,
    for Eq. 7), first_word=g [B, N, d], time_query=g_hat [B, N, d], time_keys=f_tilde
    [B, T+1, d])`` (Eq. 8); the N axis is absent for ``[B, W]`` input. ``word_mask`` marks real
    words (default ``token_ids != pad_id``); padded words are never attended to. Paper sizes:
    ``width=768, num_layers=8, num_heads=12``. Params float32, compute in ``dtype``.
    """

    vocab_size: int
    width: int = 32
    num_layers: int = 8
    num_heads: int = 4
    mlp_dim: int | None = None  # None -> 4 * width
    max_words: int = 32
    dropout_rate: float = 0.1
    pad_id: int = 0
    remat: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, token_ids: Array, video: Array, video_mask: Array, *,
                 word_mask: Array | None = None, train: bool = False) -> dict[str, Array]:
        single = token_ids.ndim == 2
        if single:
            token_ids = token_ids[:, None]
            word_mask = None if word_mask is None else word_mask[:, None]
        if token_ids.ndim != 3:
            raise ValueError(f"token_ids must be [B, N, W] or [B, W], got {token_ids.shape}")
        b, _, w = token_ids.shape
        if w > self.max_words:
            raise ValueError(f"{w} words exceed max_words={self.max_words}")
        if video.shape[0] != b or video_mask.shape != video.shape[:2]:
            raise ValueError(f"video {video.shape} / video_mask {video_mask.shape} do not "
                             f"match batch {b}")
        if word_mask is None:
            word_mask = token_ids != self.pad_id
        word_mask = word_mask.astype(bool)
        video_mask = video_mask.astype(bool)
        init = nn.initializers.normal(stddev=0.02)
        embed = self.param("word_embedding", param_axes(init, (VOCAB, EMBED)),
                           (self.vocab_size, self.width), jnp.float32)
        pos = self.param("position_embedding", init, (self.max_words, self.width), jnp.float32)
        # The table split over the vocabulary only (gathered over fsdp) for the lookup: the
        # gradient then leaves it as partial sums, not a reshuffle of the words' gradients.
        embed = constrain(embed, (VOCAB, None), replicate_unnamed=True)
        x = (jnp.take(embed, token_ids, axis=0) + pos[:w]).astype(self.dtype)
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        layers = stack_layers(
            TSCDecoderLayer, num_layers=self.num_layers, remat=self.remat, name="layers",
            num_heads=self.num_heads, mlp_dim=self.mlp_dim or 4 * self.width,
            dropout_rate=self.dropout_rate, deterministic=not train, dtype=self.dtype)
        x, (g, g_hat, f_tilde) = layers(x, (word_mask, video, video_mask))
        x = GroupLayerNorm(dtype=self.dtype, name="final_norm")(x)
        out = {"hidden": x.astype(jnp.float32), "first_word": g[0], "time_query": g_hat[0],
               "time_keys": f_tilde[0]}
        if single:
            out = {k: (v if k == "time_keys" else v[:, 0]) for k, v in out.items()}
        return out


class TAMPretrainModel(nn.Module):
    """CTM encoder + video-TSC decoder + word classifier, for TSC pretraining (Eqs. 7-10).

    ``__call__(features {m: [B, T, d_m]}, segment_mask [B, T], token_ids [B, N, W], *,
    word_mask=None, word_positions=None, train=False)`` returns float32
    ``dict(word_logits=[B, N, W, V] (or [B, K, V] at ``word_positions`` [B, K], flat indices
    into the N * W words; out-of-range entries are clipped, mask them in the loss),
    time_logits=[B, N, T] (Eq. 8 logits, padded segments at NEG_LOGIT), pooled=[B, d])``.
    Params: ``{"encoder", "decoder", "word_head"}``; fine-tuning keeps ``params["encoder"]``
    (the CTMEncoder's params) and drops the rest. Eq. 8's projections are the first decoder
    layer's cross-attention W_q / W_k, so the time task has no parameters of its own.
    """

    decoder: VideoTSCDecoder
    encoder: nn.Module | None = None

    @nn.compact
    def __call__(self, features: Mapping[str, Array], segment_mask: Array, token_ids: Array,
                 *, word_mask: Array | None = None, word_positions: Array | None = None,
                 train: bool = False) -> dict[str, Array]:
        encoder = self.encoder if self.encoder is not None else CTMEncoder(name="encoder")
        enc = encoder(features, segment_mask, train=train)
        video_mask = jnp.concatenate(
            [jnp.ones((segment_mask.shape[0], 1), bool), segment_mask.astype(bool)], axis=1)
        dec = self.decoder(token_ids, enc["video"], video_mask, word_mask=word_mask,
                           train=train)
        hidden = dec["hidden"]
        if word_positions is not None:
            # Only the scored (masked) words go through the vocabulary projection: with a
            # paper-size vocabulary the full [B, N, W, V] logits dominate a step's memory.
            flat = hidden.reshape(hidden.shape[0], -1, hidden.shape[-1])
            index = jnp.clip(word_positions, 0, flat.shape[1] - 1)
            hidden = jnp.take_along_axis(flat, index[..., None].astype(jnp.int32), axis=1)
        word_logits = nn.Dense(
            self.decoder.vocab_size, dtype=jnp.float32, param_dtype=jnp.float32,
            kernel_init=param_axes(nn.linear.default_kernel_init, (EMBED, VOCAB)),
            bias_init=param_axes(nn.initializers.zeros_init(), (VOCAB,)),
            name="word_head")(hidden)
        word_logits = constrain(word_logits, batch_axes(word_logits.ndim, VOCAB))
        time_query = dec["time_query"]
        if time_query.ndim == 2:  # one comment per video
            time_query = time_query[:, None]
        time_logits = appearing_time_logits(time_query, dec["time_keys"], video_mask)
        if token_ids.ndim == 2:
            time_logits = time_logits[:, 0]
        return {"word_logits": word_logits, "time_logits": time_logits,
                "pooled": enc["pooled"]}
