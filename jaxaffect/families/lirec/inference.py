"""LIReC inference and metrics (Kukleva et al., Sec. 3 and 4.3-4.4) as pure, jittable functions.

Inputs are logits; scores are ``sigmoid(logits)`` in float32. For characters the scores form the
``|P| x |A|`` matrix ``s_IC(v, a, p)`` and, with relationships, the ``|P| x |A| x |R|`` tensor
``T[p, a, r] = s_IC(v, a, p) + s_RC(V, r, p)`` (the combination of the released code: the sum of
the two sigmoid scores). Predictions:

* pair given the interaction (and relationship): ``argmax_p T[p, a*, r*]``;
* interaction given the pair (and relationship): ``argmax_a T[p*, a, r*] = argmax_a s_IC[p*, a]``;
* relationship given pair and interaction: ``argmax_r s_RC[p*, r]``;
* joint: ``argmax_{p, a, r} T`` (computed without building T: ``max T = max_p (max_a s_IC +
  max_r s_RC)``, which picks the same first maximiser as a flat argmax over ``(p, a, r)``).

Correct pairs may be given as ints ``[B]`` or as a boolean ``[B, P]`` set (e.g. both directions
of a bidirectional interaction; the released evaluation accepts either of two pair slots).
A prediction "given the pair" is correct when it is correct for any of the correct pairs.

Accuracies are fractions in [0, 1] over the samples where ``sample_mask`` is True (0 when none).
The helpers ``scores``, ``broadcast_mask``, ``masked_mean``, ``column`` and ``row`` are shared with
:mod:`jaxaffect.families.lirec.losses`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def scores(logits: Array) -> Array:
    """The paper's scores ``sigmoid(logits)`` in float32."""
    return jax.nn.sigmoid(logits.astype(jnp.float32))


def broadcast_mask(shape: tuple[int, ...], mask: Array | None) -> Array:
    """``mask`` as bool broadcast to ``shape``; all True when None."""
    return jnp.ones(shape, bool) if mask is None else jnp.broadcast_to(mask.astype(bool), shape)


def masked_mean(values: Array, mask: Array) -> Array:
    """Mean of ``values`` where ``mask`` is True; 0 when nothing is valid."""
    mask = mask.astype(jnp.float32)
    total = jnp.sum(mask)
    return jnp.sum(values * mask) / jnp.maximum(total, 1.0)


def _accuracy(correct: Array, sample_mask: Array | None) -> Array:
    return masked_mean(correct.astype(jnp.float32), broadcast_mask(correct.shape, sample_mask))


def _correct_pairs(true_pairs: Array, num_pairs: int) -> Array:
    """ints [B] or bool [B, P] -> bool [B, P]."""
    if true_pairs.ndim == 1:
        return jax.nn.one_hot(true_pairs, num_pairs, dtype=bool)
    return true_pairs.astype(bool)


def column(x: Array, labels: Array) -> Array:
    """``x[b, :, labels[b]]`` for x [B, P, C] -> [B, P]."""
    return jnp.take_along_axis(x, labels.astype(jnp.int32)[:, None, None], axis=-1)[..., 0]


# --------------------------------------------------------------------------- predictions


def predict(logits: Array) -> Array:
    """``argmax`` over the last axis (Eqs. 1-4: the sigmoid is monotone)."""
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def joint_score_tensor(int_logits: Array, rel_logits: Array | None = None,
                       pair_mask: Array | None = None) -> Array:
    """``T [B, P, A, R] = s_IC + s_RC`` (or ``[B, P, A]`` = ``s_IC`` alone); invalid pairs -inf."""
    t = scores(int_logits)
    if rel_logits is not None:
        t = t[..., None] + scores(rel_logits)[:, :, None, :]
    pm = broadcast_mask(int_logits.shape[:2], pair_mask)
    return jnp.where(pm.reshape(pm.shape + (1,) * (t.ndim - 2)), t, -jnp.inf)


def predict_pair(int_logits: Array, interaction: Array, pair_mask: Array | None = None,
                 rel_logits: Array | None = None, relationship: Array | None = None) -> Array:
    """Who? ``argmax_p s_IC(v, a*, p) [+ s_RC(V, r*, p)]`` over valid pairs -> [B]."""
    col = column(scores(int_logits), interaction)
    if rel_logits is not None:
        if relationship is None:
            raise ValueError("rel_logits needs the given relationship")
        col = col + column(scores(rel_logits), relationship)
    col = jnp.where(broadcast_mask(col.shape, pair_mask), col, -jnp.inf)
    return jnp.argmax(col, axis=-1).astype(jnp.int32)


def row(x: Array, pair: Array) -> Array:
    """``x[b, pair[b]]`` for x [B, P, C] -> [B, C]."""
    return jnp.take_along_axis(x, pair.astype(jnp.int32)[:, None, None], axis=1)[:, 0]


def predict_interaction_given_pair(int_logits: Array, pair: Array) -> Array:
    """Doing what? ``argmax_a s_IC(v, a, p*)`` -> [B] (a given ``r*`` adds a constant)."""
    return predict(row(int_logits, pair))


def predict_relationship_given_pair(rel_logits: Array, pair: Array) -> Array:
    """What relationship? ``argmax_r s_RC(V, r, p*)`` -> [B] (a given ``a*`` adds a constant)."""
    return predict(row(rel_logits, pair))


def predict_joint(int_logits: Array, pair_mask: Array | None = None,
                  rel_logits: Array | None = None) -> dict[str, Array]:
    """Joint ``argmax`` over the ``P x A (x R)`` scores -> dict of [B] ints ``pair``,
    ``interaction`` (and ``relationship``)."""
    si = scores(int_logits)
    best = jnp.max(si, axis=-1)
    out: dict[str, Array] = {}
    if rel_logits is not None:
        sr = scores(rel_logits)
        best = best + jnp.max(sr, axis=-1)
    best = jnp.where(broadcast_mask(best.shape, pair_mask), best, -jnp.inf)
    pair = jnp.argmax(best, axis=-1).astype(jnp.int32)
    out["pair"] = pair
    out["interaction"] = predict(row(si, pair))
    if rel_logits is not None:
        out["relationship"] = predict(row(sr, pair))
    return out


# --------------------------------------------------------------------------- metrics


def topk_accuracy(logits: Array, labels: Array, k: int = 1,
                  sample_mask: Array | None = None) -> Array:
    """Top-k accuracy (``k=1``: interaction top-1; ``k=5``: top-5 of Table 1)."""
    z = logits.astype(jnp.float32)
    true = jnp.take_along_axis(z, labels.astype(jnp.int32)[:, None], axis=-1)
    # rank = number of classes scored above the label, ties broken towards lower indices
    idx = jnp.arange(z.shape[-1])
    above = (z > true) | ((z == true) & (idx < labels[:, None]))
    return _accuracy(jnp.sum(above, axis=-1) < k, sample_mask)


def soft_top1_accuracy(logits: Array, acceptable: Array, labels: Array | None = None,
                       sample_mask: Array | None = None) -> Array:
    """Soft top-1 (Table 1): correct when ``argmax`` is in ``{a*} u O_I(v)``.

    ``acceptable [B, A]`` multi-hot of the labels of the overlapping clips; ``labels [B]``, if
    given, are added to it.
    """
    ok = acceptable.astype(bool)
    if labels is not None:
        ok = ok | jax.nn.one_hot(labels, logits.shape[-1], dtype=bool)
    pred = predict(logits)
    return _accuracy(jnp.take_along_axis(ok, pred[:, None], axis=-1)[:, 0], sample_mask)


def relationship_accuracy_by_pair(rel_logits: Array, labels: Array, pair_ids: Array,
                                  sample_mask: Array | None = None) -> Array:
    """Relationship top-1 with the sigmoid scores summed over all clips of the same pair.

    ``rel_logits [N, R]``, ``labels [N]``, ``pair_ids [N]`` (one id per pair and relationship
    span, e.g. (movie, ordered pair, relationship)). Each distinct id counts once. Clips of one id
    are expected to share a label; otherwise each clip's label gets an equal share of the id's
    vote. ``O(N^2)`` memory: call on one evaluation split's outputs.
    """
    n = labels.shape[0]
    valid = broadcast_mask((n,), sample_mask)
    same = (pair_ids[:, None] == pair_ids[None, :]) & valid[None, :] & valid[:, None]
    summed = jnp.einsum("ij,jr->ir", same.astype(jnp.float32), scores(rel_logits),
                        precision=jax.lax.Precision.HIGHEST)
    correct = predict(summed) == labels
    weight = jnp.where(valid, 1.0 / jnp.maximum(jnp.sum(same, axis=-1), 1), 0.0)
    return jnp.sum(weight * correct) / jnp.maximum(jnp.sum(weight), 1e-30)


def pair_accuracy(int_logits: Array, interaction: Array, true_pairs: Array,
                  pair_mask: Array | None = None, rel_logits: Array | None = None,
                  relationship: Array | None = None,
                  sample_mask: Array | None = None) -> Array:
    """Character-pair accuracy given the interaction (and the relationship, Table 6)."""
    pred = predict_pair(int_logits, interaction, pair_mask, rel_logits, relationship)
    ok = _correct_pairs(true_pairs, int_logits.shape[1])
    return _accuracy(jnp.take_along_axis(ok, pred[:, None], axis=-1)[:, 0], sample_mask)


def interaction_accuracy_given_pair(int_logits: Array, interaction: Array, true_pairs: Array,
                                    sample_mask: Array | None = None) -> Array:
    """Interaction accuracy given the correct pair (any of them)."""
    preds = predict(int_logits)  # [B, P]
    hit = (preds == interaction[:, None]) & _correct_pairs(true_pairs, int_logits.shape[1])
    return _accuracy(jnp.any(hit, axis=-1), sample_mask)


def relationship_accuracy_given_pair(rel_logits: Array, relationship: Array, true_pairs: Array,
                                     sample_mask: Array | None = None) -> Array:
    """Relationship accuracy given the correct pair (and interaction; it does not matter)."""
    return interaction_accuracy_given_pair(rel_logits, relationship, true_pairs, sample_mask)


def joint_accuracy(int_logits: Array, interaction: Array, true_pairs: Array,
                   pair_mask: Array | None = None, rel_logits: Array | None = None,
                   relationship: Array | None = None,
                   sample_mask: Array | None = None) -> Array:
    """Joint accuracy: the joint argmax gets the pair, the interaction (and relationship)."""
    pred = predict_joint(int_logits, pair_mask, rel_logits)
    ok = _correct_pairs(true_pairs, int_logits.shape[1])
    hit = jnp.take_along_axis(ok, pred["pair"][:, None], axis=-1)[:, 0]
    hit = hit & (pred["interaction"] == interaction)
    if rel_logits is not None:
        if relationship is None:
            raise ValueError("rel_logits needs the true relationship")
        hit = hit & (pred["relationship"] == relationship)
    return _accuracy(hit, sample_mask)
