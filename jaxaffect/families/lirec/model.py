"""LIReC scoring model of Kukleva et al. (MovieGraphs): clip representation and score heads
(paper Sec. 3, Eqs. 1, 3, 5, 7, 11; Fig. 3; Tables 1, 3, 4).

Pieces:

* :class:`ClipRepresentation` -- ``Phi(v, p)``: one two-layer MLP per modality (visual clip,
  dialogue, and one branch per character of the pair's track features), concatenated, then
  ``tanh`` and dropout (Sec. 4.1 "Clip representation").
* :class:`LIReC` -- interaction logits per clip (Eq. 1 / 5 / 7) and relationship logits per
  group of clips ``V`` of one pair (Eq. 3 / 11), with the couplings of Table 3.

Every head returns *logits*; the paper's scores are ``sigmoid(logits)`` and are formed inside the
losses (:mod:`jaxaffect.families.lirec.losses`) and inference
(:mod:`jaxaffect.families.lirec.inference`), in float32.

Shapes. Every input has arbitrary leading dimensions ``L`` (e.g. ``[B, K]`` for K clips of a known
pair, ``[B, P, K]`` for P candidate pairs); the visual and dialogue inputs only need to
*broadcast* against the track input, so the per-clip branches run once per clip and not once per
candidate pair (e.g. visual ``[B, 1, K, Dv]`` with tracks ``[B, P, K, 2, Dr]``).

Choices where the paper is silent or the released code differs (fields select them):

* ``dropout_before_relu`` (released: ``Linear -> Dropout -> ReLU -> Linear``). With one dropout
  mask both orders give the same numbers (inverted dropout scales by a positive factor, ReLU is
  positively homogeneous and maps 0 to 0), so this only fixes the parameter/rng layout.
* Track branches ``track_hidden_dim=512 -> track_out_dim=256`` per character with separate weights
  for the first and second character (released); the paper gives no sizes. The MLP outputs are
  linear (no activation after the second layer); ``tanh`` comes after the concatenation, as in the
  released code.
* ``int_hidden_dim``: the hidden layer ``W^I1`` of Eqs. 1/5/7 (``Dense -> ReLU -> Dropout``).
  The released code uses it only in its joint model (a "gating" layer of
  ``6 * 512 = 3072`` units on the concatenation ``[Phi_R; Phi_I]``) and classifies ``Phi``
  linearly otherwise; ``int_hidden_dim=0`` gives that linear classifier. We concatenate in the
  order of Eq. 5, ``[Phi_I; Phi_R]`` (a permutation of weight rows, no functional difference).
* ``separate_rel_weights``: ``Phi_R`` has its own MLPs (released, and Eq. 5 names ``Phi_I`` and
  ``Phi_R`` separately); ``False`` shares them with ``Phi_I``.
* ``rel_pool`` is ``g`` of Eq. 3 ("avg" or "max" over the clip slots allowed by ``clip_mask``).
  The paper pools ``Phi(v)`` (after ``tanh``); the released code takes the masked mean of the
  modality MLP outputs *before* ``tanh`` (``rel_pool_before_tanh=True``). Empty groups give 0.
* Couplings (Table 3): ``"rel_to_int"`` feeds ``Phi_R(V)`` to the interaction head (Eq. 5);
  ``"int_to_rel"`` feeds the pooled ``g(Phi_I(v))`` over V to the relationship head;
  ``"both"`` does both; ``"none"`` is plain multi-task learning (or a single task).
* ``temporal_pool`` (Table 4: "avg", "sum", "max") pools per-segment features over time inside a
  clip before the MLPs (Sec. 4.1 uses max); ``None`` means the inputs are already pooled.
* Missing modalities are zero vectors (Sec. 4.1; unseen characters are zeros, Sec. 3.2): nothing
  special is done for them here.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array

TEMPORAL_POOLS: tuple[str, ...] = ("avg", "sum", "max")
CLIP_POOLS: tuple[str, ...] = ("avg", "max")
COUPLINGS: tuple[str, ...] = ("none", "rel_to_int", "int_to_rel", "both")
MODALITIES: tuple[str, ...] = ("visual", "text", "tracks")
TASKS: tuple[str, ...] = ("interactions", "relationships")

# The released PyTorch code's choices, as LIReC fields (``LIReC(**RELEASED_CODE)``); joint_dim
# 512 and dropout 0.3 are also our defaults. Its joint model couples "rel_to_int".
RELEASED_CODE: dict[str, object] = dict(
    joint_dim=512, track_hidden_dim=512, track_out_dim=256, dropout_rate=0.3,
    dropout_before_relu=True, int_hidden_dim=3072, separate_rel_weights=True, rel_pool="avg",
    rel_pool_before_tanh=True, coupling="rel_to_int")


def masked_pool(x: Array, mask: Array | None, kind: str) -> Array:
    """Pool ``x [..., N, D]`` over N where ``mask [..., N]`` is True (the two broadcast).

    ``kind`` is "avg", "sum" or "max". Slots outside the mask are ignored; an all-masked group
    gives zeros (the count in the mean is clamped to 1, the max falls back to 0).
    """
    if kind not in TEMPORAL_POOLS:
        raise ValueError(f"unknown pooling {kind!r}; expected one of {TEMPORAL_POOLS}")
    if mask is None:
        mask = jnp.ones(x.shape[:-1], dtype=bool)
    lead = jnp.broadcast_shapes(x.shape[:-1], mask.shape)
    x = jnp.broadcast_to(x, (*lead, x.shape[-1]))
    mask = jnp.broadcast_to(mask.astype(bool), lead)
    m = mask[..., None]
    if kind == "max":
        neg = jnp.asarray(-jnp.inf, x.dtype)
        pooled = jnp.max(jnp.where(m, x, neg), axis=-2)
        return jnp.where(jnp.any(mask, axis=-1)[..., None], pooled, jnp.zeros_like(pooled))
    total = jnp.sum(jnp.where(m, x, jnp.zeros_like(x)), axis=-2)
    if kind == "sum":
        return total
    count = jnp.maximum(jnp.sum(mask, axis=-1, keepdims=True), 1).astype(x.dtype)
    return total / count


class ModalityMLP(nn.Module):
    """Two-layer MLP of one modality: ``Dense(hidden) -> ReLU/Dropout -> Dense(out)``."""

    hidden_dim: int
    out_dim: int
    dropout_rate: float = 0.3
    dropout_before_relu: bool = True

    @nn.compact
    def __call__(self, x: Array, *, deterministic: bool = True) -> Array:
        h = nn.Dense(self.hidden_dim, name="fc1")(x)
        drop = nn.Dropout(self.dropout_rate, name="dropout")
        if self.dropout_before_relu:  # released code; same numbers as ReLU first (see module doc)
            h = nn.relu(drop(h, deterministic=deterministic))
        else:
            h = drop(nn.relu(h), deterministic=deterministic)
        return nn.Dense(self.out_dim, name="fc2")(h)


class ClipRepresentation(nn.Module):
    """``Phi(v, p)``: per-modality MLPs, concatenated, ``tanh``, dropout.

    Inputs (without ``temporal_pool``): visual ``[*Lv, Dv]``, text ``[*Lt, Dt]``, tracks
    ``[*Lr, 2, Dr]`` (first and second character); the leading shapes broadcast to ``L``.
    With ``temporal_pool`` set, each input has a time axis before the feature axis (tracks
    ``[*Lr, 2, T, Dr]``) and an optional boolean mask without the feature axis.
    Returns ``[*L, D]`` with ``D = joint_dim * (#visual + #text) + 2 * track_out_dim``; with
    ``final=False`` the concatenation before ``tanh`` and dropout.
    """

    joint_dim: int = 512
    track_hidden_dim: int = 512
    track_out_dim: int = 256
    dropout_rate: float = 0.3
    dropout_before_relu: bool = True
    modalities: Sequence[str] = MODALITIES
    temporal_pool: str | None = None

    @property
    def out_dim(self) -> int:
        d = self.joint_dim * sum(m in self.modalities for m in ("visual", "text"))
        return d + (2 * self.track_out_dim if "tracks" in self.modalities else 0)

    def _pool(self, x: Array, mask: Array | None) -> Array:
        if self.temporal_pool is None:
            return x
        return masked_pool(x, mask, self.temporal_pool)

    @nn.compact
    def __call__(self, visual: Array | None, text: Array | None, tracks: Array | None, *,
                 visual_mask: Array | None = None, text_mask: Array | None = None,
                 track_mask: Array | None = None, final: bool = True,
                 deterministic: bool = True) -> Array:
        unknown = set(self.modalities) - set(MODALITIES)
        if unknown or not self.modalities:
            raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}")
        mlp = lambda hidden, out, name: ModalityMLP(
            hidden, out, self.dropout_rate, self.dropout_before_relu, name=name)
        parts: list[Array] = []
        if "text" in self.modalities:
            x = self._pool(text.astype(jnp.float32), text_mask)
            parts.append(mlp(self.joint_dim, self.joint_dim, "text")(
                x, deterministic=deterministic))
        if "visual" in self.modalities:
            x = self._pool(visual.astype(jnp.float32), visual_mask)
            parts.append(mlp(self.joint_dim, self.joint_dim, "visual")(
                x, deterministic=deterministic))
        if "tracks" in self.modalities:
            x = self._pool(tracks.astype(jnp.float32), track_mask)  # [*Lr, 2, Dr]
            for slot, name in enumerate(("track_first", "track_second")):
                parts.append(mlp(self.track_hidden_dim, self.track_out_dim, name)(
                    x[..., slot, :], deterministic=deterministic))
        lead = jnp.broadcast_shapes(*(p.shape[:-1] for p in parts))
        phi = jnp.concatenate([jnp.broadcast_to(p, (*lead, p.shape[-1])) for p in parts], -1)
        if not final:
            return phi
        return nn.Dropout(self.dropout_rate, name="out_dropout")(
            jnp.tanh(phi), deterministic=deterministic)


class LIReC(nn.Module):
    """Interaction and relationship logits for groups of clips of one (candidate) pair.

    ``__call__(visual, text, tracks, clip_mask)`` with visual ``[*L, K, Dv]``, text
    ``[*L, K, Dt]``, tracks ``[*L, K, 2, Dr]`` (leading shapes broadcast; a time axis before the
    feature axis when ``temporal_pool`` is set) and ``clip_mask [*L, K]`` marking the clips of the
    group ``V`` (pooled by ``g`` for ``Phi_R(V)``). Returns a dict with
    ``interaction_logits [*L, K, A]`` (every slot, masked or not: a target clip may be left out
    of ``V``, as the released code does) when "interactions" is a task, and
    ``relationship_logits [*L, R]`` when "relationships" is a task.
    """

    num_interactions: int = 101
    num_relationships: int = 15
    tasks: Sequence[str] = TASKS
    coupling: str = "rel_to_int"
    joint_dim: int = 512
    track_hidden_dim: int = 512
    track_out_dim: int = 256
    int_hidden_dim: int = 3072
    dropout_rate: float = 0.3
    dropout_before_relu: bool = True
    modalities: Sequence[str] = MODALITIES
    temporal_pool: str | None = None
    rel_pool: str = "avg"
    rel_pool_before_tanh: bool = False
    separate_rel_weights: bool = True

    def _validate(self) -> None:
        if self.coupling not in COUPLINGS:
            raise ValueError(f"unknown coupling {self.coupling!r}; expected one of {COUPLINGS}")
        if self.rel_pool not in CLIP_POOLS:
            raise ValueError(f"unknown rel_pool {self.rel_pool!r}; expected one of {CLIP_POOLS}")
        if self.temporal_pool is not None and self.temporal_pool not in TEMPORAL_POOLS:
            raise ValueError(f"unknown temporal_pool {self.temporal_pool!r}")
        if not self.tasks or set(self.tasks) - set(TASKS):
            raise ValueError(f"tasks must be a non-empty subset of {TASKS}")
        if self.coupling in ("rel_to_int", "both") and "interactions" not in self.tasks:
            raise ValueError(f"coupling {self.coupling!r} needs the interaction task")
        if self.coupling in ("int_to_rel", "both") and "relationships" not in self.tasks:
            raise ValueError(f"coupling {self.coupling!r} needs the relationship task")

    def _clip_rep(self, name: str) -> ClipRepresentation:
        return ClipRepresentation(
            joint_dim=self.joint_dim, track_hidden_dim=self.track_hidden_dim,
            track_out_dim=self.track_out_dim, dropout_rate=self.dropout_rate,
            dropout_before_relu=self.dropout_before_relu, modalities=tuple(self.modalities),
            temporal_pool=self.temporal_pool, name=name)

    @nn.compact
    def __call__(self, visual: Array | None, text: Array | None, tracks: Array | None,
                 clip_mask: Array, *, visual_mask: Array | None = None,
                 text_mask: Array | None = None, track_mask: Array | None = None,
                 deterministic: bool = True) -> dict[str, Array]:
        self._validate()
        rel_to_int = self.coupling in ("rel_to_int", "both")
        int_to_rel = self.coupling in ("int_to_rel", "both")
        want_int = "interactions" in self.tasks
        want_rel = "relationships" in self.tasks
        masks = dict(visual_mask=visual_mask, text_mask=text_mask, track_mask=track_mask)
        drop = lambda x, name: nn.Dropout(self.dropout_rate, name=name)(
            x, deterministic=deterministic)
        clip_mask = clip_mask.astype(bool)
        out: dict[str, Array] = {}

        phi_int_mod = self._clip_rep("phi_int")
        phi_i = None
        if want_int or int_to_rel:
            phi_i = phi_int_mod(visual, text, tracks, **masks, deterministic=deterministic)

        phi_r = None  # Phi_R(V) = g(Phi(v)) over the clips of V: [*L, D]
        if want_rel or rel_to_int:
            rep = phi_int_mod if not self.separate_rel_weights else self._clip_rep("phi_rel")
            if self.rel_pool_before_tanh:  # released: pool the MLP outputs, then tanh, dropout
                pre = rep(visual, text, tracks, **masks, final=False, deterministic=deterministic)
                phi_r = drop(jnp.tanh(masked_pool(pre, clip_mask, self.rel_pool)), "rel_dropout")
            else:  # paper: Phi(V) = g(Phi(v))
                clips = rep(visual, text, tracks, **masks, deterministic=deterministic)
                phi_r = masked_pool(clips, clip_mask, self.rel_pool)

        if want_int:
            x = phi_i
            if rel_to_int:  # Eq. 5: [Phi_I(v); Phi_R(V)] for every clip v
                lead = jnp.broadcast_shapes(phi_i.shape[:-1], (*phi_r.shape[:-1], 1))
                x = jnp.concatenate(
                    [jnp.broadcast_to(phi_i, (*lead, phi_i.shape[-1])),
                     jnp.broadcast_to(phi_r[..., None, :], (*lead, phi_r.shape[-1]))], -1)
            if self.int_hidden_dim:  # W^I1 (the released "gating" layer)
                x = drop(nn.relu(nn.Dense(self.int_hidden_dim, name="int_hidden")(x)),
                         "int_hidden_dropout")
            out["interaction_logits"] = nn.Dense(self.num_interactions, name="int_out")(x)

        if want_rel:
            x = phi_r
            if int_to_rel:  # [Phi_R(V); g(Phi_I(v) for v in V)]
                pooled_i = masked_pool(phi_i, clip_mask, self.rel_pool)
                lead = jnp.broadcast_shapes(phi_r.shape[:-1], pooled_i.shape[:-1])
                x = jnp.concatenate([jnp.broadcast_to(phi_r, (*lead, phi_r.shape[-1])),
                                     jnp.broadcast_to(pooled_i, (*lead, pooled_i.shape[-1]))],
                                    -1)
            out["relationship_logits"] = nn.Dense(self.num_relationships, name="rel_out")(x)
        return out
