"""Optimizers from `config.optimizer` (parameter groups, step decay) and `init_from` copies.

`make_optimizer` builds the optax transformation the trainer uses; `load_pretrained` copies
named subtrees of another run's checkpoint onto fresh parameters (fine-tuning from
pretraining), checking names and shapes.
"""

from __future__ import annotations

import re
from typing import Any

import flax
import jax
import ml_collections
import numpy as np
import optax


def make_schedule(opt: ml_collections.ConfigDict, steps_per_epoch: int,
                  total_steps: int | None = None) -> optax.Schedule:
    """The learning-rate schedule of `config.optimizer`.

    schedule "step" (the default when absent): lr x decay_factor every decay_every_epochs
    epochs (0 keeps the rate constant). schedule "cosine":
    linear warm-up from 0 over warmup_epochs, then a cosine decay to 0 at `total_steps` (the
    schedule of Video Swin-style fine-tuning).
    """
    kind = opt.get("schedule", "step") or "step"
    if kind == "cosine":
        if not total_steps:
            raise ValueError("optimizer.schedule='cosine' needs the run's total number of steps")
        warmup = int(round(float(opt.get("warmup_epochs", 0.0) or 0.0) * steps_per_epoch))
        warmup = min(max(warmup, 0), total_steps - 1)
        return optax.warmup_cosine_decay_schedule(
            0.0, opt.learning_rate, warmup_steps=warmup,
            decay_steps=total_steps, end_value=0.0)
    if kind != "step":
        raise ValueError(f"optimizer.schedule={kind!r}: one of step, cosine")
    every = int(opt.get("decay_every_epochs", 0) or 0)
    if every <= 0:
        return optax.constant_schedule(opt.learning_rate)
    return optax.exponential_decay(opt.learning_rate, transition_steps=every * steps_per_epoch,
                                   decay_rate=opt.decay_factor, staircase=True)


def _base_optimizer(opt: ml_collections.ConfigDict, schedule: optax.Schedule
                    ) -> optax.GradientTransformation:
    wd = float(opt.get("weight_decay", 0.0) or 0.0)
    if opt.name == "adam":
        # torch.optim.Adam semantics (the papers' code): weight decay is an L2 term added to
        # the gradient before the moments, not AdamW's decoupled decay.
        parts = [optax.add_decayed_weights(wd)] if wd else []
        return optax.chain(*parts, optax.adam(schedule))
    if opt.name == "adamw":
        return optax.adamw(schedule, weight_decay=wd)
    if opt.name == "sgd":
        parts = [optax.add_decayed_weights(wd)] if wd else []
        return optax.chain(*parts, optax.sgd(schedule, momentum=opt.get("momentum", 0.9)))
    raise ValueError(f"optimizer.name={opt.name!r}: one of adam, adamw, sgd")


def param_path(path: tuple) -> str:
    """'encoder/layers/attention/kernel' for a tree path of dict keys."""
    return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def param_group_labels(params: Any, groups: tuple) -> Any:
    """A tree of group labels ("group_<i>" or "default"): the first matching regex wins."""
    compiled = [(re.compile(pattern), f"group_{i}") for i, (pattern, _) in enumerate(groups)]

    def label(path, _):
        name = param_path(path)
        return next((lab for rx, lab in compiled if rx.search(name)), "default")

    return jax.tree_util.tree_map_with_path(label, params)


def make_optimizer(opt: ml_collections.ConfigDict, steps_per_epoch: int, params: Any = None,
                   total_steps: int | None = None
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """The configured optimizer and its (default group's) learning-rate schedule.

    `optimizer.param_groups` = ((regex, learning_rate), ...) gives matching parameters their own
    learning rate (same schedule shape); `params` (or its abstract shapes) is then required.
    """
    schedule = make_schedule(opt, steps_per_epoch, total_steps)
    groups = tuple(tuple(g) for g in (opt.get("param_groups", ()) or ()))
    if groups:
        if params is None:
            raise ValueError("optimizer.param_groups needs the parameter tree")
        labels = param_group_labels(params, groups)
        used = set(jax.tree_util.tree_leaves(labels))
        unused = [pattern for i, (pattern, _) in enumerate(groups) if f"group_{i}" not in used]
        if unused:
            names = sorted(param_path(p) for p, _ in
                           jax.tree_util.tree_leaves_with_path(params))[:8]
            raise ValueError(f"optimizer.param_groups: {unused} match no parameter "
                             f"(parameters look like {names})")
        transforms = {"default": _base_optimizer(opt, schedule)}
        for i, (_, lr) in enumerate(groups):
            sub = ml_collections.ConfigDict(opt.to_dict())
            sub.learning_rate = float(lr)
            transforms[f"group_{i}"] = _base_optimizer(
                sub, make_schedule(sub, steps_per_epoch, total_steps))
        core = optax.multi_transform(transforms, labels)
    else:
        core = _base_optimizer(opt, schedule)
    if opt.get("grad_clip_norm", 0.0):
        core = optax.chain(optax.clip_by_global_norm(opt.grad_clip_norm), core)
    return core, schedule


def load_pretrained(params: Any, init_from: ml_collections.ConfigDict) -> Any:
    """`params` with subtrees replaced by those of another run (config `init_from`)."""
    from jaxaffect.checkpointing import read_run_params

    source, step = read_run_params(init_from.workdir, init_from.get("which", "best"))
    out = flax.core.unfreeze(params) if isinstance(params, flax.core.FrozenDict) else params
    out = jax.tree_util.tree_map(lambda x: x, out)  # a copy of the containers
    pairs = tuple(tuple(p) for p in (init_from.get("subtrees", ()) or ()))
    if not pairs:
        raise ValueError("init_from.subtrees is empty: say which subtrees to copy, e.g. "
                         "(('encoder', 'encoder'),)")

    def subtree(tree, path, what):
        node = tree
        for key in [k for k in path.split("/") if k]:
            if not isinstance(node, dict) or key not in node:
                have = sorted(node) if isinstance(node, dict) else type(node).__name__
                raise KeyError(f"init_from: {what} has no {path!r} (at {key!r}; has {have})")
            node = node[key]
        return node

    for src_path, dst_path in pairs:
        src = subtree(source, src_path, f"run {init_from.workdir} (step {step})")
        dst = subtree(out, dst_path, "the new model")
        if jax.tree_util.tree_structure(src) != jax.tree_util.tree_structure(dst):
            raise ValueError(f"init_from: {src_path!r} and {dst_path!r} have different "
                             "parameter names")
        for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(src),
                                jax.tree_util.tree_leaves(dst)):
            if np.shape(a) != np.shape(b):
                raise ValueError(f"init_from: {src_path}/{param_path(path)} has shape "
                                 f"{np.shape(a)}, the new model's {dst_path}/"
                                 f"{param_path(path)} has {np.shape(b)}")
        parent_path, _, last = dst_path.rstrip("/").rpartition("/")
        parent = subtree(out, parent_path, "the new model") if parent_path else out
        parent[last] = jax.tree_util.tree_map(
            lambda new, old: np.asarray(new, dtype=np.asarray(old).dtype), src, dst)
    return out
