"""PERR model of Gao et al. (ERATO): per-stream projection -> multi-modal fusion -> per-modality
temporal LSTMs -> fused and per-modality heads (paper Sec. 4, Figs. 4-5, Eqs. 1-5, Table 3).

Fusion stages (the ``fusion`` field; the rows of Table 3):

* ``"smta"`` -- the Synchronous Modal-Temporal Attention unit (Sec. 4.2), scanned over time:
  ``h~_t, c_t = LSTMCell(h~_{t-1}, c_{t-1}, f_t)`` with ``f_t = sum_m f^m_t`` (Eq. 1);
  ``Z_t = [f^1_t, ..., f^M_t, h~_t]``; ``Z'_t = A_t Z_t`` (one of the attention forms);
  ``g^m_t = [h~_t, Z'^m_t]`` (2d).
* ``"lstm"`` -- "normal LSTM": the same first-stage LSTM on the summed features, no attention.
  The paper does not say what the per-modality input of the second stage is then; we use
  ``g^m_t = [h~_t, f^m_t]``, i.e. SMTA with the identity in place of ``A_t``, so the only
  difference from SMTA is the attention.
* ``"attention"`` -- "existing attention methods": the same attention forms over
  ``Z_t = [f^1_t, ..., f^M_t]`` without temporal context (no first-stage LSTM),
  ``g^m_t = (A_t Z_t)^m`` (d).

Every variant then runs one LSTM per modality over ``g^m_t`` (Eq. 2, separate weights) and
predicts ``FC(sum_m h^m_T)`` (Eq. 3) and ``FC_m(h^m_T)`` (Eq. 4, a separate FC per modality --
the paper writes "FC" in both equations; separate heads let each modality's head specialise).
Softmax is left to the loss.

Choices not fixed by the paper:

* Real streams have different sizes; the paper assumes every ``f^m_t`` is in R^d. Each stream
  gets its own Dense to d, applied to the whole sequence outside the scan. Absent steps of a
  stream become zero vectors AFTER the projection (the paper zero-pads missing features), and
  absent streams are masked as attention keys.
* Dropout (``dropout_rate``) on the projected features, inside the transformer layer, and on
  ``h^m_T`` before the heads; the paper does not give its regularisation.
* Padded steps (``step_mask`` False) carry every recurrent state unchanged, so ``h^m_T`` is the
  state at the clip's last real step and trailing padding never changes an output.

How the train step is computed (the same functions as the generic modules in
``jaxaffect.nn.recurrent`` and ``perr.attention``, with their parameter names and initial
values; tested):

* every LSTM (the first stage and the M temporal ones) runs on
  :func:`~jaxaffect.families.perr.recurrence.lstm_layer`: the input projections of all steps
  (and all modalities) are one matmul before the loop, each step one batched recurrent matmul,
  and the backward loop carries only ``(dh, dc)``, ``dW_hh`` being one matmul after it;
* the stream projections and the SMTA transformer layer use
  :class:`~jaxaffect.families.perr.linear.Dense`, whose kernel gradient is laid out as a
  row-major matmul;
* the default ``smta_impl="parallel"`` with the transformer form skips the output projection,
  norms and FFN of the ``h~`` token (its output is not part of ``g``), with the same dropout
  draws as the full layer.

`benchmarks/smta_train_step.py` times the variants against an eager PyTorch SMTA.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxaffect.families.perr.attention import (
    ATTENTION_KINDS,
    PrefixTransformerLayer,
    make_attention,
)
from jaxaffect.families.perr.erato_format import FINE_LABELS, STREAMS
from jaxaffect.families.perr.linear import Dense, DenseParams, linear
from jaxaffect.families.perr.recurrence import (
    MaskedLSTMLayer,
    PerModalityLSTMLayer,
    RecurrentParams,
    lstm_layer,
)
from jaxaffect.nn.recurrent import (
    NUM_GATES,
    Carry,
    LSTMCell,
    gate_projection,
    lstm_bias_init,
    per_modality,
    scan_over_time,
    zero_carry,
)

Array = jax.Array
FUSIONS: tuple[str, ...] = ("lstm", "attention", "smta")


class SMTACell(nn.Module):
    """One SMTA step (Sec. 4.2, Fig. 5), scanned over time by :class:`SMTAFusion`.

    ``inputs = (x_gates [B, 4d], tokens [B, M, d], token_mask [B, M], step_mask [B])`` where
    ``x_gates`` is the LSTM input projection of ``f_t = sum_m f^m_t`` (computed outside the
    scan). Returns ``(carry', (g [B, M, 2d], weights [B, M+1, M+1]))``. The attention runs
    inside the step because ``Z_t`` contains ``h~_t``.
    """

    features: int
    attention: str
    num_heads: int = 4
    dropout_rate: float = 0.1
    deterministic: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, carry: Carry, inputs: tuple[Array, Array, Array, Array]
                 ) -> tuple[Carry, tuple[Array, Array]]:
        x_gates, tokens, token_mask, step_mask = inputs
        carry, h = LSTMCell(self.features, self.dtype, name="lstm")(carry, (x_gates, step_mask))
        h = h.astype(tokens.dtype)[:, None, :]  # [B, 1, d]
        z = jnp.concatenate([tokens, h], axis=1)  # Z_t = [f^1_t .. f^M_t, h~_t]
        z_mask = jnp.concatenate([token_mask & step_mask[:, None], step_mask[:, None]], axis=1)
        attn = make_attention(self.attention, num_heads=self.num_heads,
                              dropout_rate=self.dropout_rate, dtype=self.dtype, name="attn")
        z_fused, weights = attn(z, z_mask, deterministic=self.deterministic)
        m = tokens.shape[1]
        h_rep = jnp.broadcast_to(h, (h.shape[0], m, h.shape[2])).astype(z_fused.dtype)
        g = jnp.concatenate([h_rep, z_fused[:, :m]], axis=-1)  # g^m_t = [h~_t, Z'^m_t]
        return carry, (g, weights)


class _SMTAStage(nn.Module):
    """Fields shared by the SMTA stage implementations."""

    features: int
    attention: str
    num_heads: int = 4
    dropout_rate: float = 0.1
    dtype: Any = jnp.float32
    unroll: int = 1


class SMTAFusion(_SMTAStage):
    """First stage with SMTA: ``f [B, T, M, d]`` -> ``(g [B, T, M, 2d], A [B, T, M+1, M+1])``."""

    @nn.compact
    def __call__(self, f: Array, token_mask: Array, step_mask: Array, *,
                 deterministic: bool = True) -> tuple[Array, Array]:
        x_gates = gate_projection(self.features, dtype=self.dtype, name="lstm_ih")(f.sum(axis=2))
        cell = scan_over_time(SMTACell, unroll=self.unroll)(
            self.features, self.attention, self.num_heads, self.dropout_rate, deterministic,
            self.dtype, name="cell")
        _, (g, weights) = cell(zero_carry((f.shape[0],), self.features),
                               (x_gates, f, token_mask, step_mask))
        return g, weights


class _SMTAParts(_SMTAStage):
    """The SMTA cell's two parts applied in sequence over the whole clip (parameter names as
    in :class:`SMTACell`, so checkpoints work with either implementation)."""

    @nn.compact
    def __call__(self, x_proj: Array, bias: Array, f: Array, token_mask: Array,
                 step_mask: Array, *, deterministic: bool = True) -> tuple[Array, Array]:
        w_hh = RecurrentParams(self.features, name="lstm")()
        hs, _ = lstm_layer(x_proj, bias[None], w_hh[None], step_mask, self.unroll, self.dtype)
        b, t, m, d = f.shape
        h = jnp.swapaxes(hs[0], 0, 1).astype(f.dtype)[:, :, None, :]  # h~_t: [B, T, 1, d]
        z = jnp.concatenate([f, h], axis=2).reshape(b * t, m + 1, d)
        z_mask = jnp.concatenate([token_mask & step_mask[..., None], step_mask[..., None]],
                                 axis=2).reshape(b * t, m + 1)
        if self.attention == "transformer":  # the h~ token's output is never used: skip it
            z_fused, weights = PrefixTransformerLayer(
                self.num_heads, self.dropout_rate, self.dtype, name="attn")(
                z, z_mask, m, deterministic=deterministic)
        else:
            attn = make_attention(self.attention, num_heads=self.num_heads,
                                  dropout_rate=self.dropout_rate, dtype=self.dtype, name="attn")
            z_fused, weights = attn(z, z_mask, deterministic=deterministic)
        z_fused = z_fused[:, :m].reshape(b, t, m, d)
        g = jnp.concatenate([jnp.broadcast_to(h, (b, t, m, d)).astype(z_fused.dtype), z_fused],
                            axis=-1)
        return g, weights.reshape(b, t, m + 1, m + 1)


class ParallelSMTAFusion(_SMTAStage):
    """SMTA with the attention taken out of the time scan; the same function as SMTAFusion.

    In Sec. 4.2 the attention output g^m_t never feeds back into the recurrence (the LSTM reads
    f_t and its own state only), so all h~_t are computed by one LSTM loop first
    (:func:`~jaxaffect.families.perr.recurrence.lstm_layer`) and A_t Z_t is then evaluated for
    every step at once; with the transformer form, the layer skips the output projection, norms
    and FFN of the h~ token, whose output Z'^{M+1}_t is not part of g. With the same parameters
    the outputs equal those of the step-by-step cell (tested); only dropout draws differ.
    `benchmarks/smta_train_step.py` times both side by side.
    """

    @nn.compact
    def __call__(self, f: Array, token_mask: Array, step_mask: Array, *,
                 deterministic: bool = True) -> tuple[Array, Array]:
        d = f.shape[-1]
        kernel, bias = DenseParams(d, NUM_GATES * self.features, bias_init=lstm_bias_init(),
                                   name="lstm_ih")()
        x_proj = linear(jnp.swapaxes(f.sum(axis=2), 0, 1), kernel, self.dtype)  # [T, B, 4d]
        parts = _SMTAParts(self.features, self.attention, self.num_heads, self.dropout_rate,
                           self.dtype, self.unroll, name="cell")
        return parts(x_proj.astype(jnp.float32)[None], bias, f, token_mask, step_mask,
                     deterministic=deterministic)


class LSTMFusion(nn.Module):
    """First stage of the "LSTM" baseline: ``g^m_t = [h~_t, f^m_t]`` (no attention)."""

    features: int
    dtype: Any = jnp.float32
    unroll: int = 1

    @nn.compact
    def __call__(self, f: Array, token_mask: Array, step_mask: Array, *,
                 deterministic: bool = True) -> tuple[Array, None]:
        hs = MaskedLSTMLayer(self.features, self.dtype, self.unroll, name="lstm")(
            f.sum(axis=2), step_mask)
        h = jnp.broadcast_to(hs[:, :, None, :].astype(f.dtype), f.shape)
        return jnp.concatenate([h, f], axis=-1), None


class AttentionFusion(nn.Module):
    """First stage of the attention baselines: attention over ``[f^1_t .. f^M_t]`` per step.

    There is no state across steps, so the steps are folded into the batch (no scan).
    """

    attention: str
    num_heads: int = 4
    dropout_rate: float = 0.1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, f: Array, token_mask: Array, step_mask: Array, *,
                 deterministic: bool = True) -> tuple[Array, Array]:
        b, t, m, d = f.shape
        attn = make_attention(self.attention, num_heads=self.num_heads,
                              dropout_rate=self.dropout_rate, dtype=self.dtype, name="attn")
        g, weights = attn(f.reshape(b * t, m, d), token_mask.reshape(b * t, m),
                          deterministic=deterministic)
        return g.reshape(b, t, m, d), weights.reshape(b, t, m, m)


class PERRModel(nn.Module):
    """Pairwise emotional relationship recognition model (paper Sec. 4 and Table 3 rows).

    ``__call__(streams, masks, step_mask, *, train=False, return_attention=False)`` with
    ``streams[s]`` float [B, T, d_s], ``masks[s]`` bool [B, T], ``step_mask`` bool [B, T]
    returns ``{"logits": [B, C], "modality_logits": [B, M, C]}`` (float32) and, when
    ``return_attention`` and the fusion has attention, ``"attention"`` [B, T, N, N] (per-step
    weights averaged over heads; N = M+1 for SMTA with the last token h~, N = M for the
    attention baselines; zero on padded steps). ``fusion="lstm"`` has no attention and never
    returns that key. Dropout draws from the "dropout" rng collection when ``train``.
    """

    fusion: str = "smta"
    attention: str = "transformer"
    hidden_size: int = 128
    num_heads: int = 4
    num_classes: int = len(FINE_LABELS)
    dropout_rate: float = 0.1
    stream_names: tuple[str, ...] = STREAMS
    dtype: Any = jnp.float32
    scan_unroll: int = 1
    # "parallel": LSTM scan, then the attention of every step at once (same function);
    # "scan": the attention inside the scanned cell, step by step as drawn in the paper's Fig. 5.
    smta_impl: str = "parallel"

    def _check(self) -> None:
        if self.fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {self.fusion!r}; one of {', '.join(FUSIONS)}")
        if self.smta_impl not in ("parallel", "scan"):
            raise ValueError(f"unknown smta_impl {self.smta_impl!r}; parallel or scan")
        if self.fusion != "lstm" and self.attention not in ATTENTION_KINDS:
            raise ValueError(f"unknown attention {self.attention!r}; "
                             f"one of {', '.join(ATTENTION_KINDS)}")

    def _project(self, streams: dict[str, Array], masks: dict[str, Array], step_mask: Array
                 ) -> tuple[Array, Array]:
        """Per-stream Dense to d (outside any scan); absent steps -> zero vectors."""
        feats, present = [], []
        for s in self.stream_names:
            if s not in streams or s not in masks:
                raise KeyError(f"stream {s!r} (or its mask) missing; got {sorted(streams)}")
            m = masks[s].astype(bool) & step_mask
            # Zero the raw input too: garbage (even inf/NaN) at absent steps must not reach the
            # kernel gradient through x^T dy.
            x = jnp.where(m[..., None], streams[s], 0).astype(self.dtype)
            y = Dense(self.hidden_size, self.dtype, name=f"proj_{s}")(x)
            feats.append(jnp.where(m[..., None], y, jnp.zeros((), y.dtype)))
            present.append(m)
        return jnp.stack(feats, axis=2), jnp.stack(present, axis=2)  # [B,T,M,d], [B,T,M]

    @nn.compact
    def __call__(self, streams: dict[str, Array], masks: dict[str, Array], step_mask: Array, *,
                 train: bool = False, return_attention: bool = False) -> dict[str, Array]:
        self._check()
        step_mask = step_mask.astype(bool)
        f, token_mask = self._project(streams, masks, step_mask)
        f = nn.Dropout(self.dropout_rate, deterministic=not train, name="input_dropout")(f)
        d = self.hidden_size
        if self.fusion == "smta":
            impl = {"scan": SMTAFusion, "parallel": ParallelSMTAFusion}[self.smta_impl]
            stage = impl(d, self.attention, self.num_heads, self.dropout_rate, self.dtype,
                         self.scan_unroll, name="smta")
        elif self.fusion == "attention":
            stage = AttentionFusion(self.attention, self.num_heads, self.dropout_rate,
                                    self.dtype, name="modal_attention")
        else:
            stage = LSTMFusion(d, self.dtype, self.scan_unroll, name="lstm_fusion")
        g, weights = stage(f, token_mask, step_mask, deterministic=not train)

        h_last = PerModalityLSTMLayer(d, self.dtype, self.scan_unroll, name="temporal")(
            g, step_mask)  # h^m_T: [B, M, d] float32
        h_last = nn.Dropout(self.dropout_rate, deterministic=not train, name="head_dropout")(
            h_last)
        h_last = h_last.astype(self.dtype)
        logits = nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=jnp.float32,
                          name="head")(h_last.sum(axis=1))  # Eq. 3
        modality_head = per_modality(nn.Dense, in_axes=1, out_axes=1)(
            self.num_classes, dtype=self.dtype, param_dtype=jnp.float32, name="modality_heads")
        out = {"logits": logits.astype(jnp.float32),
               "modality_logits": modality_head(h_last).astype(jnp.float32)}  # Eq. 4
        if return_attention and weights is not None:
            out["attention"] = weights.astype(jnp.float32)
        return out
