"""The one generic trainer: mesh -> data -> model and optimizer -> shardings -> restore -> loop.

Every experiment family plugs in through its Task (jaxaffect/families/<name>); nothing here
knows about any model. Runs on one CPU, on a multi-device mesh and on several processes alike.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxaffect import sharding as shd
from jaxaffect.checkpointing import Checkpoints, PreemptionFlag
from jaxaffect.config_loading import config_to_json
from jaxaffect.run_logging import MetricWriter, Progress, read_metrics
from jaxaffect.task import Task, concat_batches, get_task


class NonFiniteLossError(RuntimeError):
    """Training produced NaN/inf; the run stopped and the last good checkpoint is kept."""


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    opt_state: Any


# ----------------------------------------------------------------------------------------------
# Optimizer
# ----------------------------------------------------------------------------------------------
def make_schedule(opt: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
    """Step-decay schedule: lr x decay_factor every decay_every_epochs epochs (paper Sec. 5.1)."""
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


def make_optimizer(opt: ml_collections.ConfigDict, steps_per_epoch: int, params: Any = None
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """The configured optimizer and its (default group's) learning-rate schedule.

    `optimizer.param_groups` = ((regex, learning_rate), ...) gives matching parameters their own
    learning rate (same schedule shape); `params` (or its abstract shapes) is then required.
    """
    schedule = make_schedule(opt, steps_per_epoch)
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
            transforms[f"group_{i}"] = _base_optimizer(sub, make_schedule(sub, steps_per_epoch))
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


# ----------------------------------------------------------------------------------------------
# Setup shared by train, eval and predict
# ----------------------------------------------------------------------------------------------
class Setup:
    """Mesh, task, model, optimizer and shardings of a run (no data iteration yet)."""

    def __init__(self, config: ml_collections.ConfigDict, steps_per_epoch: int | None = None):
        self.config = config
        n = int(config.mesh.get("num_devices", 0) or 0)
        self.mesh = shd.make_mesh(config.mesh.data, config.mesh.fsdp,
                                  devices=jax.devices()[:n] if n else None)
        self.task: Task = get_task(config)
        self.model = self.task.make_model()
        if steps_per_epoch is None:
            steps_per_epoch = max(1, self.task.num_examples("train")
                                  // config.training.batch_size)
        self.steps_per_epoch = steps_per_epoch
        dummy = self.task.dummy_batch(1)
        abstract_params = jax.eval_shape(
            lambda r: self.task.init_variables(self.model, r, dummy)["params"],
            jax.random.key(0))
        self.tx, self.schedule = make_optimizer(config.optimizer, steps_per_epoch,
                                                abstract_params)

        def init(rng):
            variables = self.task.init_variables(self.model, rng, dummy)
            params = variables["params"]
            return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                              opt_state=self.tx.init(params))

        self._init = init
        init_rng = jax.random.fold_in(jax.random.key(config.seed), 0)
        self.init_rng = init_rng
        self.abstract_state = jax.eval_shape(init, init_rng)
        self.state_shardings = shd.tree_shardings(self.abstract_state, self.mesh,
                                                  config.mesh.get("min_shard_size", 2**12))
        self.batch_sharding = shd.batch_sharding(self.mesh)
        self.abstract_sharded = jax.tree_util.tree_map(
            lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
            self.abstract_state, self.state_shardings)

    def init_state(self) -> TrainState:
        """Parameters are created already sharded: jit(init) with out_shardings.

        With `config.init_from.workdir` set, the named subtrees then come from that run's
        checkpoint (fine-tuning from pretraining) and the optimizer state starts fresh.
        """
        state = jax.jit(self._init, out_shardings=self.state_shardings)(self.init_rng)
        init_from = self.config.get("init_from")
        if init_from is None or not init_from.get("workdir"):
            return state
        params = load_pretrained(jax.device_get(state.params), init_from)
        params = jax.device_put(params, self.state_shardings.params)
        opt_state = jax.jit(self.tx.init, out_shardings=self.state_shardings.opt_state)(params)
        return TrainState(step=state.step, params=params, opt_state=opt_state)

    def make_train_step(self):
        task, model, tx, schedule = self.task, self.model, self.tx, self.schedule

        def train_step(state: TrainState, batch, base_rng):
            # The key is an argument (not a traced constant), so runs that differ only in their
            # seed share one compiled program.
            rng = jax.random.fold_in(base_rng, state.step)

            def loss_fn(params):
                return task.loss(model, params, batch, rng, True, step=state.step)

            (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
            metrics = dict(aux)
            metrics["loss"] = loss
            metrics["grad_norm"] = optax.global_norm(grads)
            metrics["learning_rate"] = schedule(state.step)
            return TrainState(state.step + 1, params, opt_state), metrics

        return jax.jit(train_step,
                       in_shardings=(self.state_shardings, self.batch_sharding,
                                     shd.replicated(self.mesh)),
                       out_shardings=(self.state_shardings, shd.replicated(self.mesh)),
                       donate_argnums=(0,))

    def make_predict_step(self):
        task, model = self.task, self.model
        return jax.jit(lambda params, batch: task.predict(model, params, batch),
                       in_shardings=(self.state_shardings.params, self.batch_sharding),
                       out_shardings=self.batch_sharding)


# ----------------------------------------------------------------------------------------------
# Evaluation over a whole split
# ----------------------------------------------------------------------------------------------
def run_evaluation(setup: Setup, params: Any, split: str, predict_step=None
                   ) -> tuple[dict[str, float], list[dict], dict[str, np.ndarray]]:
    """Predicts every example of `split` once; metrics are computed over the whole split."""
    task = setup.task
    predict_step = predict_step or setup.make_predict_step()
    ds = task.dataset(split, train=False, seed=0, num_epochs=1,
                      process_index=jax.process_index(), process_count=jax.process_count())
    it = iter(ds)
    device_parts, host_parts = [], []
    template = None
    while True:
        batch = next(it, None)
        if jax.process_count() > 1:  # every host runs the same number of steps
            done = shd.gather_rows(np.array([batch is None]))
            if bool(np.all(done)):
                break
            if batch is None:
                batch = jax.tree_util.tree_map(np.zeros_like, template)
        elif batch is None:
            break
        template = batch
        dev = task.device_batch(batch)
        out = predict_step(params, shd.global_batch(dev, setup.mesh))
        local = {k: shd.local_rows(v) for k, v in out.items()}
        local.update({k: np.asarray(v) for k, v in dev.items() if not isinstance(v, dict)})
        device_parts.append(local)
        host_parts.append({k: np.asarray(batch[k]) for k in task.host_keys})
    outputs = concat_batches(device_parts)
    host = concat_batches(host_parts)
    if jax.process_count() > 1:
        outputs = {k: shd.gather_rows(v) for k, v in outputs.items()}
        host = {k: _gather_strings(v) for k, v in host.items()}
    keep = outputs["valid"].astype(bool)
    outputs = {k: v[keep] for k, v in outputs.items()}
    host = {k: v[keep] for k, v in host.items()}
    metrics, records = task.evaluate(outputs, host)
    return metrics, records, outputs


def _gather_strings(values: np.ndarray) -> np.ndarray:
    encoded = [str(v).encode() for v in values]
    width = max([len(e) for e in encoded] + [1])
    width = int(shd.gather_rows(np.array([width])).max())
    arr = np.zeros((len(encoded), width), np.uint8)
    for i, e in enumerate(encoded):
        arr[i, :len(e)] = np.frombuffer(e, np.uint8)
    full = shd.gather_rows(arr)
    return np.array([bytes(r).rstrip(b"\0").decode() for r in full], dtype=object)


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
def train(config: ml_collections.ConfigDict, workdir: str, *, progress: bool = True,
          stop_after_steps: int | None = None) -> dict[str, Any]:
    """Trains (or resumes) a run in `workdir`; returns the best validation metrics.

    `stop_after_steps` stops early (as a preemption would) after that many steps of this call;
    it exists to exercise resumption.
    """
    workdir_path = Path(workdir)
    tcfg = config.training
    setup = Setup(config)
    task = setup.task
    steps_per_epoch = setup.steps_per_epoch
    total_steps = tcfg.num_epochs * steps_per_epoch
    if jax.process_index() == 0:
        workdir_path.mkdir(parents=True, exist_ok=True)
        (workdir_path / "config.json").write_text(config_to_json(config))

    ckpts = Checkpoints(workdir_path, best_metric=task.selection_metric(),
                        best_mode=task.selection_mode())
    train_ds = task.dataset("train", train=True, seed=config.seed, num_epochs=tcfg.num_epochs,
                            process_index=jax.process_index(),
                            process_count=jax.process_count())
    data_iter = iter(train_ds)
    start = ckpts.latest_step()
    if start is not None:
        state = ckpts.restore_latest(setup.abstract_sharded, data_iter)
        start = int(state.step)
    else:
        state = setup.init_state()
        start = 0
    writer = MetricWriter(workdir_path, resume_step=start if start else None)
    if start == 0:
        writer.write(0, {"param_count": sum(x.size for x in
                                            jax.tree_util.tree_leaves(state.params)),
                         "steps_per_epoch": steps_per_epoch, "total_steps": total_steps,
                         "num_devices": setup.mesh.size, "num_processes": jax.process_count(),
                         "platform": jax.devices()[0].platform})
    train_step = setup.make_train_step()
    dropout_rng = jax.random.fold_in(jax.random.key(config.seed), 1)
    predict_step = setup.make_predict_step()
    flag = PreemptionFlag()
    bar = Progress(total_steps, initial=start, desc=f"train {config.get('name', config.task)}",
                   enabled=progress)
    log_every = max(1, int(tcfg.log_every_steps))
    ckpt_every = int(tcfg.checkpoint_every_steps or 0)
    eval_every = max(1, int(tcfg.get("eval_every_epochs", 1))) * steps_per_epoch
    window: list[dict[str, float]] = []
    t_window = time.perf_counter()
    step = start
    stopped_early = False
    try:
        while step < total_steps:
            batch = next(data_iter, None)
            if batch is None:
                raise RuntimeError(f"train data ran out at step {step} of {total_steps}")
            state, metrics = train_step(
                state, shd.global_batch(task.device_batch(batch), setup.mesh), dropout_rng)
            metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
            step += 1
            if not math.isfinite(metrics["loss"]):
                last = ckpts.latest_step()
                writer.write(step, {"train/loss": metrics["loss"], "error": "non-finite loss"})
                raise NonFiniteLossError(
                    f"step {step}: training loss is {metrics['loss']}; the run stopped. "
                    f"The last good checkpoint (step {last}) in {ckpts.root / 'latest'} is kept; "
                    "lower optimizer.learning_rate or set optimizer.grad_clip_norm and rerun.")
            window.append(metrics)
            bar.update(1, loss=metrics["loss"])
            if step % log_every == 0 or step == total_steps:
                dt = time.perf_counter() - t_window
                avg = {f"train/{k}": float(np.mean([m[k] for m in window])) for k in window[0]}
                avg["train/examples_per_sec"] = len(window) * tcfg.batch_size / max(dt, 1e-9)
                avg["epoch"] = step / steps_per_epoch
                writer.write(step, avg)
                window, t_window = [], time.perf_counter()
            if step % eval_every == 0 or step == total_steps:
                val, _, _ = run_evaluation(setup, state.params, "validation", predict_step)
                writer.write(step, {f"val/{k}": v for k, v in val.items()})
                improved = ckpts.save_best(step, state, val)
                sel = task.selection_metric()
                bar.write(f"step {step} (epoch {step / steps_per_epoch:.0f}): validation "
                          f"{sel}={val[sel]:.4f}" + (" (best so far)" if improved else ""))
                ckpts.save_latest(step, state, data_iter)
            elif ckpt_every and step % ckpt_every == 0:
                ckpts.save_latest(step, state, data_iter)
            preempted = flag.is_set
            if jax.process_count() > 1 and step % log_every == 0:
                preempted = bool(np.any(shd.gather_rows(np.array([preempted]))))
            if preempted or (stop_after_steps is not None and step - start >= stop_after_steps):
                ckpts.save_latest(step, state, data_iter)
                bar.write(f"stopping at step {step}; checkpoint saved, rerun the same command "
                          "to resume")
                stopped_early = True
                break
    finally:
        bar.close()
        writer.close()
        flag.restore_handlers()
    best_step = ckpts.best_step()
    summary: dict[str, Any] = {"workdir": str(workdir_path), "steps": step,
                               "total_steps": total_steps, "finished": step >= total_steps,
                               "stopped_early": stopped_early, "best_step": best_step}
    if best_step is not None:
        summary["best_validation"] = ckpts.best.metrics(best_step)
    ckpts.close()
    if jax.process_index() == 0:
        from jaxaffect.plots import plot_training_curves

        plot_training_curves(read_metrics(writer.path), str(workdir_path / "training_curves.png"),
                             keys=("train/loss", f"val/{task.selection_metric()}"))
        (workdir_path / "train_summary.json").write_text(json.dumps(summary, indent=2,
                                                                    default=float))
    return summary
