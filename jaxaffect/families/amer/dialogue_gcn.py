"""DialogueGCN (Ghosal et al., EMNLP 2019) as a MEmoR Table 3 baseline, adapted to the
persons x segments layout of a MEmoR example.

Forward (B examples, P persons, S segments, N = P * S nodes, node n = p * S + s):

1. Node features: the used modalities' encodings (AMER's encoders, zeroed where the modality is
   absent) concatenated, ``[B, P, S, sum d_m]``. Every REAL (person, segment) entry is a node,
   also one without any present modality (its features are zeros) -- the "modality missing
   vertices" the MEmoR paper blames for DialogueGCN's limits (Sec. 5.2).
2. Sequential context encoder: a bidirectional GRU over segments, run per person (128 per
   direction) -> ``g [B, N, 256]``. (The original runs one GRU over the utterance sequence of the
   conversation; here each person's track of segments is a sequence.)
3. Graph (:func:`relation_adjacency`): an edge from node i to node j when both are real and
   ``|s_i - s_j| <= window`` (all persons, self included). Relation type = (same / other person)
   x (j at an earlier-or-same / later segment than i): 4 types. The original has one relation
   per ordered speaker pair and direction (2 M^2); MEmoR has up to 8 named speakers per clip and
   only a few annotated examples per pair, so we keep the speaker-agnostic same / other split
   (persons are compared by their slot, so "others" counts as one person).
4. Edge weights ``alpha_ij = softmax_j(g_i^T W_e g_j)`` over the neighbours of i (float32).
5. Layer 1, relational graph convolution (Ghosal et al. Eq. 3):
   ``h1_i = ReLU(sum_r sum_{j in N_i^r} alpha_ij / c_ir W_r g_j + alpha_ii W_0 g_i + b)``,
   ``c_ir = |N_i^r|``. Layer 2, graph convolution (Eq. 4):
   ``h2_i = ReLU(sum_{j in N_i} W h1_j + W_0 h1_i + b)`` (plain sum over neighbours, as the
   original's GraphConv; ``gc_mean=True`` averages instead).
6. The target node's ``[g; h2]`` (+ the target person's personality embedding, "concatenated
   after fusion", Sec. 5.2) -> classifier Dense(256), ReLU, Dense(C).

Not carried over: the original's optional attention over all utterances before the classifier
("nodal attention") and its dropout. Padded persons / segments are not nodes: no edges, zero
features, masked in the GRU.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxaffect.families.amer.fusion_baselines import BaselineModule, present_mask
from jaxaffect.nn.attention import masked_softmax
from jaxaffect.nn.recurrent import keep_where, scan_over_time

Array = jax.Array

NUM_RELATIONS = 4  # 2 * (other person) + (later segment)


def relation_adjacency(node_mask: Array, window: int) -> Array:
    """Relation type of every edge, ``int32 [B, N, N]`` with -1 where there is no edge.

    ``node_mask [B, P, S]`` (True = real entry); node ``n = p * S + s``. Entry ``[b, i, j]`` is
    the relation under which node i receives from node j:
    ``2 * (p_j != p_i) + (s_j > s_i)`` if both nodes are real and ``|s_i - s_j| <= window``.
    """
    b, p, s = node_mask.shape
    person = jnp.repeat(jnp.arange(p), s)
    segment = jnp.tile(jnp.arange(s), p)
    other = person[None, :] != person[:, None]
    later = segment[None, :] > segment[:, None]
    near = jnp.abs(segment[None, :] - segment[:, None]) <= window
    real = node_mask.reshape(b, p * s)
    edge = real[:, :, None] & real[:, None, :] & near[None]
    rel = 2 * other.astype(jnp.int32) + later.astype(jnp.int32)
    return jnp.where(edge, rel[None], -1)


def relational_aggregate(messages: Array, relation: Array, alpha: Array) -> Array:
    """``out_i = sum_r sum_{j: rel_ij = r} alpha_ij / c_ir * messages[j, r]``, ``c_ir`` the number
    of neighbours of i under relation r.

    ``messages [B, N, R, E]`` (``W_r g_j``), ``relation int [B, N, N]`` (-1 = no edge),
    ``alpha [B, N, N]`` -> ``[B, N, E]``.
    """
    onehot = jax.nn.one_hot(relation, messages.shape[2], dtype=jnp.float32)  # [B, N, N, R]
    count = jnp.maximum(jnp.sum(onehot, axis=2, keepdims=True), 1.0)  # [B, N, 1, R]
    weights = (onehot / count) * alpha.astype(jnp.float32)[..., None]
    return jnp.einsum("bijr,bjre->bie", weights.astype(messages.dtype), messages)


class GRUCell(nn.Module):
    """One masked GRU step (PyTorch gate layout) on pre-projected inputs.

    ``__call__(h, (x_gates, step_mask)) -> (h', h')`` with ``x_gates [B, 3H] = W_x x + b_x``
    (order r, z, n). Where the mask is False the state is passed through unchanged. Gates and the
    state are float32.
    """

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, h: Array, inputs: tuple[Array, Array]) -> tuple[Array, Array]:
        x_gates, step_mask = inputs
        hh = nn.Dense(3 * self.features, dtype=self.dtype, param_dtype=jnp.float32,
                      name="hh")(h.astype(self.dtype)).astype(jnp.float32)
        xr, xz, xn = jnp.split(x_gates.astype(jnp.float32), 3, axis=-1)
        hr, hz, hn = jnp.split(hh, 3, axis=-1)
        r = jax.nn.sigmoid(xr + hr)
        z = jax.nn.sigmoid(xz + hz)
        n = jnp.tanh(xn + r * hn)
        new = keep_where(step_mask, (1.0 - z) * n + z * h, h)
        return new, new


class BiGRU(nn.Module):
    """Bidirectional masked GRU over ``x [B, T, d]``, ``step_mask [B, T]`` -> ``[B, T, 2H]``
    (forward; backward). The input projections run outside the scans (one matmul each)."""

    features: int = 128
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: Array, step_mask: Array) -> Array:
        outs = []
        for name, flip in (("fwd", False), ("bwd", True)):
            xs, ms = (x[:, ::-1], step_mask[:, ::-1]) if flip else (x, step_mask)
            gates = nn.Dense(3 * self.features, dtype=self.dtype, param_dtype=jnp.float32,
                             name=f"{name}_ih")(xs)
            scan = scan_over_time(GRUCell)(self.features, self.dtype, name=f"{name}_cell")
            _, hs = scan(jnp.zeros((x.shape[0], self.features), jnp.float32), (gates, ms))
            outs.append(hs[:, ::-1] if flip else hs)
        return jnp.concatenate(outs, axis=-1)


class DialogueGCN(BaselineModule):
    """DialogueGCN over the persons x segments nodes of an example (see the module docstring)."""

    gru_features: int = 128
    graph_features: int = 256
    window: int = 10
    gc_mean: bool = False

    @nn.compact
    def __call__(self, batch: dict[str, Array], *, train: bool = False) -> dict[str, Array]:
        del train  # no dropout
        node_mask = batch["person_mask"][:, :, None] & batch["segment_mask"][:, None, :]
        b, p, s = node_mask.shape
        feats = jnp.concatenate([self.encode(batch[m], present_mask(batch, m), m)
                                 for m in self.used], axis=-1)  # [B, P, S, F]
        g = BiGRU(self.gru_features, self.dtype, name="context")(
            feats.reshape(b * p, s, -1), node_mask.reshape(b * p, s))
        real = node_mask.reshape(b, p * s)
        g = jnp.where(real[..., None], g.reshape(b, p * s, -1), 0.0).astype(self.dtype)

        relation = relation_adjacency(node_mask, self.window)
        edge = relation >= 0
        keys = nn.Dense(g.shape[-1], use_bias=False, dtype=self.dtype, name="edge_attention")(g)
        alpha = masked_softmax(jnp.einsum("bid,bjd->bij", g, keys,
                                          preferred_element_type=jnp.float32), edge)
        w_rel = self.param("rgcn_relations", nn.initializers.lecun_normal(
            in_axis=-2, out_axis=-1, batch_axis=(0,)),
            (NUM_RELATIONS, g.shape[-1], self.graph_features), jnp.float32)
        messages = jnp.einsum("bjd,rde->bjre", g, w_rel.astype(self.dtype))
        self_alpha = jnp.einsum("bii->bi", alpha)[..., None].astype(self.dtype)
        root = nn.Dense(self.graph_features, use_bias=False, dtype=self.dtype,
                        name="rgcn_root")(g)
        bias = self.param("rgcn_bias", nn.initializers.zeros, (self.graph_features,),
                          jnp.float32)
        h1 = nn.relu(relational_aggregate(messages, relation, alpha) + self_alpha * root
                     + bias.astype(self.dtype))
        adj = edge.astype(self.dtype)
        if self.gc_mean:
            adj = adj / jnp.maximum(jnp.sum(adj, -1, keepdims=True), 1.0)
        neighbours = nn.Dense(self.graph_features, use_bias=False, dtype=self.dtype,
                              name="gc_neighbours")(jnp.einsum("bij,bjd->bid", adj, h1))
        h2 = nn.relu(neighbours + nn.Dense(self.graph_features, dtype=self.dtype,
                                           name="gc_root")(h1))

        target = batch["target_person"] * s + batch["target_segment"]
        idx = target.astype(jnp.int32)[:, None, None]
        fused = jnp.concatenate([jnp.take_along_axis(g, idx, axis=1)[:, 0],
                                 jnp.take_along_axis(h2, idx, axis=1)[:, 0]], axis=-1)
        return {"logits": self.classify(fused, batch)}
