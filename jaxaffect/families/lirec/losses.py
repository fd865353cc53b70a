"""LIReC max-margin losses (Kukleva et al., Sec. 3, Eqs. 2, 4, 6, 8-10, 12-14) as pure functions.

Every function takes *logits* (the outputs of :class:`jaxaffect.families.lirec.model.LIReC`) and
forms the paper's scores ``s = sigmoid(logits)`` in float32 (``inference.scores``). Hinge terms
are ``[m - s_pos + s_neg]_+``. All functions are vectorised over the batch and the candidate
pairs, masked, and jittable (``supervision``, ``selection``, ``negatives``, ``sample_from`` and
``reduction`` are static Python strings; ``epoch`` and ``burn_in`` may be traced).

Conventions and choices (the paper leaves them open):

* ``allowed_negatives [B, A]`` is the complement of ``O_I(v)``: True where a label may serve as a
  negative. It is applied literally; if it excludes ``a*`` itself, no cell of column ``a*`` is a
  negative (as in the released code, whose overlap mask is applied the same way).
* Batch reduction: each term is the mean of its per-sample losses over the samples that carry
  that label (released code: mean over the batch; relationship terms only over samples with a
  relationship label). A sample without any valid candidate pair contributes nothing.
* Default margins ``m = 0.101`` (the released default; the paper gives no value).
* Eq. 6 with K clip slots: ``L_R(V) + lambda * mean_{v in V} L_I(v)`` per group, the mean over
  the slots whose interaction label is valid. Eqs. 12-14 are implemented per target clip ``v``
  with its group ``V`` per candidate pair (as the released code does); the ``1/|V| sum_v`` of
  Eq. 14 is then the average over the batch of target clips.
* Pair selection (Eqs. 9, 12) is a ``stop_gradient`` choice; only the chosen cell's score gets
  gradient. ``sample_from="softmax"`` samples from the softmax of the logits over valid pairs
  (released code; for Eq. 12 the mean of the two softmaxes), ``"scores"`` from the sigmoid
  scores normalised to sum to 1 (the paper's words, "treat s as a multinomial").
* Hard negatives (``negatives="sum_max"``): ``sum_p max_a`` over the same negative cells, used
  when ``epoch >= burn_in`` (plain sums before). Pairs with no negative cell contribute 0 and
  invalid pairs never contribute (the released code adds ``[m - s_pos]_+`` for padded pairs).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxaffect.families.lirec.inference import broadcast_mask, column, masked_mean, scores

Array = jax.Array

SUPERVISIONS: tuple[str, ...] = ("full", "weak")
SELECTIONS: tuple[str, ...] = ("argmax", "sample")
NEGATIVES: tuple[str, ...] = ("sum", "sum_max")
SAMPLE_FROM: tuple[str, ...] = ("softmax", "scores")
DEFAULT_MARGIN = 0.101
DEFAULT_LAMBDA = 1.5
DEFAULT_BURN_IN = 20


def _check(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; expected one of {allowed}")


def _reduce(per_sample: Array, mask: Array, reduction: str) -> Array:
    if reduction == "mean":
        return masked_mean(per_sample, mask)
    if reduction == "none":
        return jnp.where(mask, per_sample, 0.0)
    raise ValueError(f"unknown reduction {reduction!r}; expected 'mean' or 'none'")


def hinge_sum(pos: Array, neg: Array, neg_mask: Array, margin: float) -> Array:
    """``sum_n [margin - pos + neg_n]_+`` over the masked last axis: pos [...], neg [..., N]."""
    terms = jax.nn.relu(margin - pos[..., None] + neg)
    return jnp.sum(jnp.where(neg_mask, terms, 0.0), axis=-1)


def hinge_sum_max(pos: Array, neg: Array, neg_mask: Array, margin: float) -> Array:
    """``sum_p [margin - pos + max_c neg_pc]_+``: pos [B], neg [B, P, C], neg_mask [B, P, C].

    The max runs over the masked cells of each row p; rows without a masked cell add nothing.
    """
    hardest = jnp.max(jnp.where(neg_mask, neg, -jnp.inf), axis=-1)
    has_neg = jnp.any(neg_mask, axis=-1)
    terms = jax.nn.relu(margin - pos[..., None] + jnp.where(has_neg, hardest, 0.0))
    return jnp.sum(jnp.where(has_neg, terms, 0.0), axis=-1)


def use_hard_negatives(negatives: str, epoch: int | Array = 0,
                       burn_in: int | Array = DEFAULT_BURN_IN) -> Array:
    """Boolean scalar: hard negatives on (``negatives="sum_max"`` and ``epoch >= burn_in``)."""
    _check("negatives", negatives, NEGATIVES)
    if negatives == "sum":
        return jnp.asarray(False)
    return jnp.asarray(epoch) >= jnp.asarray(burn_in)


# --------------------------------------------------------------------------- single clip / group


def interaction_loss(logits: Array, labels: Array, allowed_negatives: Array | None = None, *,
                     margin: float = DEFAULT_MARGIN, sample_mask: Array | None = None,
                     reduction: str = "mean") -> Array:
    """Eq. 2: ``sum_{a in A \\ O_I(v), a != a*} [m - s_I(v, a*) + s_I(v, a)]_+``.

    Args:
      logits: [..., A] interaction logits (Eq. 1 or 5).
      labels: [...] int ``a*``.
      allowed_negatives: [..., A] bool, False for the labels of temporally overlapping clips.
      sample_mask: [...] bool, False for padded samples.
      reduction: "mean" over valid samples, or "none" for the per-sample losses.
    """
    s = scores(logits)
    num = s.shape[-1]
    labels = labels.astype(jnp.int32)
    pos = jnp.take_along_axis(s, labels[..., None], axis=-1)[..., 0]
    neg_mask = (broadcast_mask(s.shape, allowed_negatives)
                & (jnp.arange(num) != labels[..., None]))
    per = hinge_sum(pos, s, neg_mask, margin)
    return _reduce(per, broadcast_mask(labels.shape, sample_mask), reduction)


def relationship_loss(logits: Array, labels: Array, *, margin: float = DEFAULT_MARGIN,
                      sample_mask: Array | None = None, reduction: str = "mean") -> Array:
    """Eq. 4: ``sum_{r != r*} [m - s_R(V, r*) + s_R(V, r)]_+`` (no overlap masking).

    ``logits [..., R]`` from Eq. 3, ``labels [...]``; ``sample_mask`` False for groups without a
    relationship label (the released "None" class).
    """
    return interaction_loss(logits, labels, None, margin=margin, sample_mask=sample_mask,
                            reduction=reduction)


def joint_interaction_relationship_loss(
        int_logits: Array, int_labels: Array, rel_logits: Array, rel_labels: Array, *,
        allowed_negatives: Array | None = None, int_mask: Array | None = None,
        rel_mask: Array | None = None, lam: float = DEFAULT_LAMBDA,
        margin_int: float = DEFAULT_MARGIN, margin_rel: float = DEFAULT_MARGIN,
) -> tuple[Array, dict[str, Array]]:
    """Eq. 6: ``L_R(V) + lambda / |V| * sum_{v in V} L_I(v)`` (interaction scores of Eq. 5).

    Args:
      int_logits: [B, K, A] per clip slot; int_labels [B, K]; allowed_negatives [B, K, A].
      int_mask: [B, K] bool, the slots whose interaction label enters the loss (``V``).
      rel_logits: [B, R]; rel_labels [B]; rel_mask [B] bool (groups with a relationship).

    Returns ``(loss, aux)``; aux has ``loss``, ``interaction`` (the mean of the per-group
    ``mean_v L_I``), ``relationship`` (mean ``L_R``).
    """
    b, k = int_labels.shape
    int_mask = broadcast_mask((b, k), int_mask)
    per_clip = interaction_loss(int_logits, int_labels, allowed_negatives, margin=margin_int,
                                sample_mask=int_mask, reduction="none")  # [B, K]
    n_clips = jnp.sum(int_mask, axis=-1)
    per_group = jnp.sum(per_clip, axis=-1) / jnp.maximum(n_clips, 1).astype(jnp.float32)
    l_int = masked_mean(per_group, n_clips > 0)
    l_rel = relationship_loss(rel_logits, rel_labels, margin=margin_rel,
                              sample_mask=broadcast_mask((b,), rel_mask))
    loss = l_rel + lam * l_int
    return loss, {"loss": loss, "interaction": l_int, "relationship": l_rel}


# --------------------------------------------------------------------------- who is interacting


def _masked_log_softmax(logits: Array, mask: Array) -> Array:
    return jax.nn.log_softmax(jnp.where(mask, logits, -jnp.inf), axis=-1)


def select_pairs(selection_scores: Array, sample_log_probs: Array, pair_mask: Array,
                 selection: str, rng: Array | None = None) -> Array:
    """Eqs. 9 / 12: the chosen pair per sample [B] (no gradient).

    ``selection="argmax"`` maximises ``selection_scores [B, P]`` over valid pairs;
    ``"sample"`` draws from ``exp(sample_log_probs [B, P])`` (rows normalised over valid pairs).
    Samples without a valid pair get index 0 (callers mask them out).
    """
    _check("selection", selection, SELECTIONS)
    pair_mask = pair_mask.astype(bool)
    if selection == "argmax":
        return jnp.argmax(jnp.where(pair_mask, jax.lax.stop_gradient(selection_scores),
                                    -jnp.inf), axis=-1).astype(jnp.int32)
    if rng is None:
        raise ValueError("selection='sample' needs a PRNG key (rng)")
    logp = jnp.where(pair_mask, jax.lax.stop_gradient(sample_log_probs), -jnp.inf)
    logp = jnp.where(jnp.any(pair_mask, -1, keepdims=True), logp, 0.0)  # avoid all -inf rows
    return jax.random.categorical(rng, logp, axis=-1).astype(jnp.int32)


def _sample_log_probs(logit_cols: list[Array], score_cols: list[Array], pair_mask: Array,
                      sample_from: str) -> Array:
    """Log-probabilities over pairs for multinomial selection (see module doc)."""
    _check("sample_from", sample_from, SAMPLE_FROM)
    if sample_from == "softmax":
        probs = sum(jnp.exp(_masked_log_softmax(c, pair_mask)) for c in logit_cols)
    else:
        probs = jnp.where(pair_mask, sum(score_cols), 0.0)
    probs = probs / jnp.maximum(jnp.sum(probs, axis=-1, keepdims=True), 1e-30)
    return jnp.where(pair_mask & (probs > 0), jnp.log(jnp.maximum(probs, 1e-30)), -jnp.inf)


def _pair_targets(true_pair: Array | None, also_correct: Array | None, num_pairs: int
                  ) -> tuple[Array, Array]:
    """Full supervision: ([B, P] bool of the correct pairs (``p*`` and e.g. the reversed pair of
    a bidirectional interaction), the positive pair ``p*`` [B])."""
    if true_pair is None:
        raise ValueError("supervision='full' needs true_pair")
    correct = jax.nn.one_hot(true_pair, num_pairs, dtype=bool)
    if also_correct is not None:
        correct = correct | also_correct.astype(bool)
    return correct, true_pair.astype(jnp.int32)


def _pair_scores(logits: Array, pair_mask: Array) -> Array:
    """Scores [B, P, C] of float32 logits, invalid pairs' logits zeroed first."""
    return scores(jnp.where(pair_mask[:, :, None], logits, 0.0))


def _pair_matrix_hinge(s: Array, pos_pair: Array, label: Array, cell_mask: Array,
                       hard: Array, margin: float) -> tuple[Array, Array]:
    """Positive ``s[b, pos_pair, label]`` and the sum / sum-max hinge over ``cell_mask``."""
    pos = jnp.take_along_axis(column(s, label), pos_pair[:, None], axis=-1)[:, 0]
    flat = s.reshape(s.shape[0], -1)
    loss_sum = hinge_sum(pos, flat, cell_mask.reshape(flat.shape), margin)
    loss_max = hinge_sum_max(pos, s, cell_mask, margin)
    return jnp.where(hard, loss_max, loss_sum), pos


def _negative_cells(shape: tuple[int, int, int], label: Array, pair_mask: Array,
                    allowed: Array, supervision: str, correct_pairs: Array | None) -> Array:
    """Negative cells of the ``P x C`` matrix: Eq. 8 (full) or Eq. 10 (weak)."""
    is_label = jnp.arange(shape[2])[None, None, :] == label[:, None, None]
    cells = pair_mask[:, :, None] & allowed
    if supervision == "weak":  # the whole column a* is out
        return cells & ~is_label
    return cells & ~(is_label & correct_pairs[:, :, None])  # only the correct cell(s)


def interaction_character_loss(
        logits: Array, labels: Array, pair_mask: Array, *,
        allowed_negatives: Array | None = None, supervision: str = "weak",
        true_pair: Array | None = None, also_correct: Array | None = None,
        selection: str = "sample", rng: Array | None = None, sample_from: str = "softmax",
        negatives: str = "sum", epoch: int | Array = 0, burn_in: int | Array = DEFAULT_BURN_IN,
        margin: float = DEFAULT_MARGIN, sample_mask: Array | None = None,
        reduction: str = "mean") -> tuple[Array, dict[str, Array]]:
    """Eq. 8 (full) / Eqs. 9-10 (weak) over the ``|P| x |A|`` matrix of ``s_IC(v, a, p)``.

    Args:
      logits: [B, P, A] logits of Eq. 7 for each candidate pair (up to 20 in the release).
      labels: [B] int ``a*``. pair_mask: [B, P] bool, valid candidate slots.
      allowed_negatives: [B, A] bool, False for labels of overlapping clips (``O_I(v)``).
      supervision: "full" (``true_pair`` [B] known; ``also_correct`` [B, P] marks further correct
        pairs, e.g. the reverse of a bidirectional interaction, that are not negatives in column
        ``a*``) or "weak" (``p^*`` chosen by ``selection``: "argmax" (Eq. 9) or "sample").
      negatives: "sum" or "sum_max" (hard negatives once ``epoch >= burn_in``).

    Returns ``(loss, aux)``; aux has ``per_sample`` [B], ``pair`` [B] (the positive pair),
    ``positive`` [B] (its score), ``hard`` (bool scalar).
    """
    _check("supervision", supervision, SUPERVISIONS)
    b, p, a = logits.shape
    pair_mask = broadcast_mask((b, p), pair_mask)
    labels = labels.astype(jnp.int32)
    z = logits.astype(jnp.float32)
    s = _pair_scores(z, pair_mask)
    allowed = broadcast_mask((b, a), allowed_negatives)[:, None, :]
    if supervision == "full":
        correct, pos_pair = _pair_targets(true_pair, also_correct, p)
    else:
        correct = None
        col_z, col_s = column(z, labels), column(s, labels)
        logp = (_sample_log_probs([col_z], [col_s], pair_mask, sample_from)
                if selection == "sample" else col_s)
        pos_pair = select_pairs(col_s, logp, pair_mask, selection, rng)
    cells = _negative_cells((b, p, a), labels, pair_mask, allowed, supervision, correct)
    hard = use_hard_negatives(negatives, epoch, burn_in)
    per, pos = _pair_matrix_hinge(s, pos_pair, labels, cells, hard, margin)
    valid = broadcast_mask((b,), sample_mask) & jnp.any(pair_mask, axis=-1)
    loss = _reduce(per, valid, reduction)
    return loss, {"per_sample": jnp.where(valid, per, 0.0), "pair": pos_pair, "positive": pos,
                  "hard": hard}


def interaction_relationship_character_loss(
        int_logits: Array, rel_logits: Array, int_labels: Array, rel_labels: Array,
        pair_mask: Array, *, allowed_negatives: Array | None = None,
        rel_allowed_negatives: Array | None = None, rel_sample_mask: Array | None = None,
        supervision: str = "weak", true_pair: Array | None = None,
        also_correct: Array | None = None, selection: str = "sample", rng: Array | None = None,
        sample_from: str = "softmax", negatives: str = "sum", epoch: int | Array = 0,
        burn_in: int | Array = DEFAULT_BURN_IN, lam: float = DEFAULT_LAMBDA,
        margin_int: float = DEFAULT_MARGIN, margin_rel: float = DEFAULT_MARGIN,
        sample_mask: Array | None = None) -> tuple[Array, dict[str, Array]]:
    """Eqs. 11-14: ``L_RC(V) + lambda * L_IC(v)`` with one chosen pair shared by both terms.

    Args:
      int_logits: [B, P, A] ``s_IC(v, a, p)`` logits of the target clip for each candidate pair.
      rel_logits: [B, P, R] ``s_RC(V, r, p)`` logits (Eq. 11; each pair pools its own clips).
      int_labels: [B] ``a*``; rel_labels [B] ``r*``; pair_mask [B, P].
      allowed_negatives: [B, A] (``O_I(v)`` masking of the interaction term).
      rel_allowed_negatives: [B, P, R] optional extra mask of relationship negative cells (the
        released code e.g. drops pairs whose own relationship is unknown).
      rel_sample_mask: [B] False where ``r*`` is unknown: the pair is then chosen from ``s_IC``
        alone and ``L_RC`` is 0.
      Others: as in :func:`interaction_character_loss`. Weak supervision chooses
      ``p^* = argmax_p s_RC(V, r*, p) + s_IC(v, a*, p)`` (Eq. 12) or samples it.

    Returns ``(loss, aux)`` with ``loss``, ``interaction``, ``relationship``, ``pair`` [B],
    ``hard``.
    """
    _check("supervision", supervision, SUPERVISIONS)
    b, p, a = int_logits.shape
    r = rel_logits.shape[-1]
    pair_mask = broadcast_mask((b, p), pair_mask)
    int_labels, rel_labels = int_labels.astype(jnp.int32), rel_labels.astype(jnp.int32)
    valid = broadcast_mask((b,), sample_mask) & jnp.any(pair_mask, axis=-1)
    has_rel = broadcast_mask((b,), rel_sample_mask) & valid
    zi = int_logits.astype(jnp.float32)
    zr = rel_logits.astype(jnp.float32)
    si, sr = _pair_scores(zi, pair_mask), _pair_scores(zr, pair_mask)
    rel_labels_safe = jnp.where(has_rel, rel_labels, 0)
    if supervision == "full":
        correct, pos_pair = _pair_targets(true_pair, also_correct, p)
    else:
        correct = None
        ci, cr = column(si, int_labels), column(sr, rel_labels_safe)
        zero = jnp.zeros_like(cr)
        cr = jnp.where(has_rel[:, None], cr, zero)
        if selection == "sample":
            logit_cols = [column(zi, int_labels)]
            if sample_from == "softmax":  # released: mean of the two softmaxes when r* is known
                lp_i = _sample_log_probs(logit_cols, [ci], pair_mask, sample_from)
                lp_ir = _sample_log_probs(logit_cols + [column(zr, rel_labels_safe)],
                                          [ci, cr], pair_mask, sample_from)
                logp = jnp.where(has_rel[:, None], lp_ir, lp_i)
            else:
                logp = _sample_log_probs(logit_cols, [ci + cr], pair_mask, sample_from)
        else:
            logp = ci + cr
        pos_pair = select_pairs(ci + cr, logp, pair_mask, selection, rng)
    hard = use_hard_negatives(negatives, epoch, burn_in)
    int_cells = _negative_cells((b, p, a), int_labels, pair_mask,
                                broadcast_mask((b, a), allowed_negatives)[:, None, :],
                                supervision, correct)
    rel_cells = _negative_cells((b, p, r), rel_labels_safe, pair_mask,
                                broadcast_mask((b, p, r), rel_allowed_negatives), supervision,
                                correct)
    per_int, _ = _pair_matrix_hinge(si, pos_pair, int_labels, int_cells, hard, margin_int)
    per_rel, _ = _pair_matrix_hinge(sr, pos_pair, rel_labels_safe, rel_cells, hard, margin_rel)
    l_int = masked_mean(per_int, valid)
    l_rel = masked_mean(per_rel, has_rel)
    loss = l_rel + lam * l_int
    return loss, {"loss": loss, "interaction": l_int, "relationship": l_rel, "pair": pos_pair,
                  "hard": hard}
