"""The one generic trainer: mesh -> data -> model and optimizer -> shardings -> restore -> loop.

Every experiment family plugs in through its Task (jaxaffect/families/<name>); nothing here
knows about any model. Runs on one CPU, on a multi-device mesh and on several processes alike.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
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
from jaxaffect.config_loading import ConfigError, config_fields, config_to_json
from jaxaffect.nn import partitioning
from jaxaffect.optimizers import load_pretrained, make_optimizer
from jaxaffect.run_logging import MetricWriter, Progress, read_metrics
from jaxaffect.task import Task, concat_batches, get_task


class NonFiniteLossError(RuntimeError):
    """Training produced NaN/inf (loss or updated state); the run stopped before writing it."""


def check_run_config(config: ml_collections.ConfigDict) -> None:
    """Refuses, with one ConfigError naming the field, settings no run can start with."""
    training = config.get("training")
    if training is None:
        raise ConfigError("config has no `training` section")
    for key in ("batch_size", "num_epochs", "log_every_steps"):
        value = training.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"training.{key}={value!r}: must be a positive integer")
    every = training.get("checkpoint_every_steps", 0)
    if not isinstance(every, int) or every < 0:
        raise ConfigError(f"training.checkpoint_every_steps={every!r}: must be >= 0 "
                          "(0: only at evaluations)")
    mesh = config.get("mesh")
    if mesh is None:
        raise ConfigError("config has no `mesh` section")
    for key in ("data", "fsdp", "model"):
        value = mesh.get(key, 1)
        if not isinstance(value, int) or isinstance(value, bool) or (value < 1 and value != -1):
            raise ConfigError(f"mesh.{key}={value!r}: a positive integer, or -1 for the rest "
                              "of the devices")


STATE_FINITE = "state_finite"  # a train-step output checked on the host, not logged


def _float_leaves(tree: Any) -> list:
    return [x for x in jax.tree_util.tree_leaves(tree)
            if jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact)]


def all_finite(tree: Any) -> jax.Array:
    """True when every floating-point leaf of `tree` is finite."""
    leaves = [jnp.all(jnp.isfinite(x)) for x in _float_leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def sum_is_finite(tree: Any) -> jax.Array:
    """True when the float32 sum of every floating-point element of `tree` is finite.

    A cheap screen for `all_finite` (a sum reduction vectorises; a reduction over booleans did
    not, and cost a quarter of a small model's step): any NaN or infinity makes the sum
    non-finite, so True means every element is finite. False can also mean a sum that overflowed
    over finite elements; the caller then asks `all_finite`.
    """
    sums = [jnp.sum(x, dtype=jnp.float32) for x in _float_leaves(tree)]
    return jnp.isfinite(jnp.sum(jnp.stack(sums))) if sums else jnp.asarray(True)


_all_finite_jitted = jax.jit(all_finite)


def state_is_finite(state: Any) -> bool:
    """Every element of a TrainState's parameters and optimizer state is finite (exact)."""
    return bool(_all_finite_jitted((state.params, state.opt_state)))


def batch_ids(batch: dict, host_keys: tuple[str, ...], limit: int = 8) -> str:
    """The first example ids of a host batch (for error messages), or '' when it has none."""
    for key in host_keys:
        if key in batch:
            ids = [str(v) for v in np.asarray(batch[key]).ravel().tolist() if str(v)]
            more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
            return f"{key}s {', '.join(ids[:limit])}{more}"
    return ""


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    opt_state: Any


# ----------------------------------------------------------------------------------------------
# Setup shared by train, eval and predict
# ----------------------------------------------------------------------------------------------
def _init_compiler_options() -> dict[str, int] | None:
    """XLA options for the one-off initialisation program.

    On CPU, XLA's backend optimisations make compiling the parameter initialisers (a threefry
    stream per parameter) take 7-20 s for the demo models and 2-6 s without them; the program
    runs once, in milliseconds either way. Values can differ from an optimised build's in the
    last bit (1 ulp measured), never in the random bits.
    """
    return {"xla_backend_optimization_level": 0} if jax.default_backend() == "cpu" else None


class Setup:
    """Mesh, task, model, optimizer and shardings of a run (no data iteration yet)."""

    def __init__(self, config: ml_collections.ConfigDict, steps_per_epoch: int | None = None):
        check_run_config(config)
        self.config = config
        n = int(config.mesh.get("num_devices", 0) or 0)
        if n > jax.device_count():
            raise ConfigError(f"mesh.num_devices={n}, but this process sees "
                              f"{jax.device_count()} device(s)")
        try:
            self.mesh = shd.make_mesh(config.mesh.data, config.mesh.fsdp,
                                      devices=jax.devices()[:n] if n else None,
                                      model=config.mesh.get("model", 1))
        except ValueError as e:  # data x fsdp x model does not match the devices
            raise ConfigError(f"{e}; set --config.mesh.data / --config.mesh.fsdp / "
                              "--config.mesh.model (or --config.mesh.num_devices)") from None
        # Tensor parallelism: the modules' logical axis names, mapped onto `model`.
        self.model_parallel = self.mesh.shape["model"] > 1
        self.task: Task = get_task(config)
        self.model = self.task.make_model()
        if steps_per_epoch is None:
            try:
                n_train = self.task.num_examples("train")
            except (KeyError, ValueError) as e:
                reason = str(e.args[0]) if e.args else type(e).__name__
                raise ConfigError(f"no usable train split: {reason}") from None
            steps_per_epoch = max(1, n_train // config.training.batch_size)
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = int(config.training.num_epochs) * steps_per_epoch
        dummy = self.task.dummy_batch(1)
        with partitioning.recording_param_axes() if self.model_parallel else nullcontext():
            abstract_params = jax.eval_shape(
                lambda r: self.task.init_variables(self.model, r, dummy)["params"],
                jax.random.key(0))
        # {parameter path: logical axis names} (empty without a model axis)
        abstract_params, self.param_axes = partitioning.split_param_axes(abstract_params)
        self.tx, self.schedule = make_optimizer(
            config.optimizer, steps_per_epoch, abstract_params,
            total_steps=self.total_steps)

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
                                                  config.mesh.get("min_shard_size", 2**12),
                                                  param_axes=self.param_axes)
        self.batch_sharding = shd.batch_sharding(self.mesh)
        self.abstract_sharded = jax.tree_util.tree_map(
            lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
            self.abstract_state, self.state_shardings)

    def init_state(self) -> TrainState:
        """Parameters are created already sharded: jit(init) with out_shardings.

        A task may replace parts of the fresh parameters with weights from files
        (`Task.initial_params`, e.g. a converted backbone); with `config.init_from.workdir` set,
        the named subtrees then come from that run's checkpoint (fine-tuning from pretraining).
        Either way the optimizer state starts fresh.
        """
        init = jax.jit(self._init, out_shardings=self.state_shardings).lower(self.init_rng)
        state = init.compile(_init_compiler_options())(self.init_rng)
        init_from = self.config.get("init_from")
        from_run = init_from is not None and bool(init_from.get("workdir"))
        params = self.task.initial_params(state.params)
        if not from_run and params is None:
            return state
        params = jax.device_get(state.params) if params is None else params
        if from_run:
            params = load_pretrained(params, init_from)
        params = jax.device_put(params, self.state_shardings.params)
        opt_state = jax.jit(self.tx.init, out_shardings=self.state_shardings.opt_state)(params)
        return TrainState(step=state.step, params=params, opt_state=opt_state)

    def activation_sharding(self):
        """Inside a traced step: the modules' activation constraints for the model axis (no-op
        without one, so a data/fsdp-only step is the same program as before)."""
        if not self.model_parallel:
            return nullcontext()
        return partitioning.activation_sharding(self.mesh, shd.LOGICAL_AXIS_RULES)

    def make_train_step(self):
        task, model, tx, schedule = self.task, self.model, self.tx, self.schedule
        sharded_activations = self.activation_sharding

        def train_step(state: TrainState, batch, base_rng):
            # The key is an argument (not a traced constant), so runs that differ only in their
            # seed share one compiled program.
            rng = jax.random.fold_in(base_rng, state.step)

            def loss_fn(params):
                with sharded_activations():
                    return task.loss(model, params, batch, rng, True, step=state.step)

            (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
            params = optax.apply_updates(state.params, updates)
            metrics = dict(aux)
            metrics["loss"] = loss
            metrics["grad_norm"] = optax.global_norm(grads)
            metrics["learning_rate"] = schedule(state.step)
            # Screened here (one sum per leaf) so that a non-finite state is never checkpointed;
            # the host confirms a failed screen with `state_is_finite`.
            metrics[STATE_FINITE] = sum_is_finite((params, opt_state)).astype(jnp.float32)
            return TrainState(state.step + 1, params, opt_state), metrics

        return jax.jit(train_step,
                       in_shardings=(self.state_shardings, self.batch_sharding,
                                     shd.replicated(self.mesh)),
                       out_shardings=(self.state_shardings, shd.replicated(self.mesh)),
                       donate_argnums=(0,))

    def make_predict_step(self):
        task, model, sharded_activations = self.task, self.model, self.activation_sharding

        def predict_step(params, batch):
            with sharded_activations():
                return task.predict(model, params, batch)

        return jax.jit(predict_step,
                       in_shardings=(self.state_shardings.params, self.batch_sharding),
                       out_shardings=self.batch_sharding)


# ----------------------------------------------------------------------------------------------
# Evaluation over a whole split
# ----------------------------------------------------------------------------------------------
def run_evaluation(setup: Setup, params: Any, split: str, predict_step=None
                   ) -> tuple[dict[str, float], list[dict], dict[str, np.ndarray]]:
    """Predicts every example of `split` once; metrics are computed over the whole split."""
    task = setup.task
    predict_step = predict_step or shd.meet_after_compiling(setup.make_predict_step(),
                                                            "predict_step")
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
# Fields a resumed run may change with `allow_config_change` (they change how long or how
# often, not what is trained).
RESUMABLE_FIELDS = ("training.num_epochs", "training.log_every_steps",
                    "training.checkpoint_every_steps", "training.eval_every_epochs",
                    "training.early_stop_evals")
RUN_FILES = ("config.json", "checkpoints", "metrics.jsonl", "tensorboard", "train_summary.json",
             "training_curves.png")


# Fields added since runs were first written, with the value an older run had implicitly.
IMPLICIT_FIELDS = {"mesh.model": 1}


def config_differences(old: dict, new: dict) -> dict[str, tuple[Any, Any]]:
    """{dotted field: (old, new)} of two configs (as their config.json dicts)."""
    a, b = dict(config_fields(old)), dict(config_fields(new))
    for field, value in IMPLICIT_FIELDS.items():
        a.setdefault(field, value)
        b.setdefault(field, value)
    skip = {"config_file"}  # the same config may be named by another path
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if k not in skip and a.get(k) != b.get(k)}


def check_rerun(config: ml_collections.ConfigDict, workdir: Path, *, overwrite: bool,
                allow_config_change: bool) -> bool:
    """True when `workdir` already holds a run. Refuses (ConfigError) a changed config unless
    `overwrite` or, for `RESUMABLE_FIELDS` only, `allow_config_change`."""
    saved = workdir / "config.json"
    if not saved.exists():
        return False
    if overwrite:
        return True
    old = json.loads(saved.read_text())
    new = json.loads(config_to_json(config))
    diff = config_differences(old, new)
    if allow_config_change:
        diff = {k: v for k, v in diff.items() if k not in RESUMABLE_FIELDS}
    if diff:
        shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(diff.items())[:6])
        more = f" (and {len(diff) - 6} more)" if len(diff) > 6 else ""
        raise ConfigError(
            f"{workdir} holds a run with another config ({shown}{more}); use another "
            "--workdir, --overwrite to start it fresh, or --allow_config_change for "
            f"{', '.join(RESUMABLE_FIELDS)}")
    return True


def _clear_run(workdir: Path) -> None:
    """Deletes what a run and its evaluations wrote in `workdir` (nothing else there)."""
    import shutil

    for name in RUN_FILES:
        path = workdir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for pattern in ("predictions_*.jsonl", "eval_*.json", "confusion_*.png"):
        for path in workdir.glob(pattern):  # evaluations of the deleted run
            path.unlink()


def _non_finite_message(step: int, loss: float, ckpts: Checkpoints, ids: str) -> str:
    if math.isfinite(loss):
        what = (f"step {step}: the update made the parameters or optimizer state non-finite "
                f"(the loss before it was {loss:.6g})")
    else:
        what = f"step {step}: training loss is {loss}"
    last = ckpts.latest_step()
    kept = (f"the last good checkpoint (step {last}, finite) in {ckpts.root / 'latest'} is kept"
            if last is not None else "no checkpoint had been written yet")
    batch = f"; the batch held {ids}" if ids else ""
    return (f"{what}{batch}. The run stopped without saving this state; {kept}. Lower "
            "optimizer.learning_rate or set optimizer.grad_clip_norm and rerun.")


def _patience_spent(best_step: int | None, step: int, eval_every: int, patience: int) -> bool:
    """Whether `patience` evaluations (every `eval_every` steps) have passed since the best."""
    if best_step is None or step % eval_every:
        return False
    return (step - best_step) // eval_every >= patience


def _check_validation_split(config: ml_collections.ConfigDict, task: Task) -> None:
    """Refuses, in one line, a run whose validation split is missing or empty (model
    selection needs one); the hint names the setting this config has for it."""
    data = config.get("data")
    if data is not None and "validation_fraction" in data:
        hint = "raise data.validation_fraction or add examples"
    else:
        hint = ("add examples to the build's validation split (this config carves no "
                "validation examples of its own)")
    try:
        count = task.num_examples("validation")
    except (KeyError, ValueError) as e:
        reason = str(e.args[0]) if e.args else type(e).__name__
        raise ConfigError(f"no usable validation split (model selection needs one): "
                          f"{reason}; {hint}") from None
    if count == 0:
        raise ConfigError(f"the validation split is empty (model selection needs one); {hint}")


def train(config: ml_collections.ConfigDict, workdir: str, *, progress: bool = True,
          stop_after_steps: int | None = None, overwrite: bool = False,
          allow_config_change: bool = False) -> dict[str, Any]:
    """Trains (or resumes) a run in `workdir`; returns the best validation metrics.

    A workdir that holds a run resumes it when the config is the same. A different config is
    refused (one ConfigError listing the differing fields) unless `overwrite` (the old run is
    deleted and training starts fresh) or `allow_config_change` (only fields in
    `RESUMABLE_FIELDS`, such as the number of epochs, may differ).

    `stop_after_steps` stops early (as a preemption would) after that many steps of this call;
    it exists to exercise resumption.
    """
    workdir_path = Path(workdir)
    tcfg = config.training
    resuming = check_rerun(config, workdir_path, overwrite=overwrite,
                           allow_config_change=allow_config_change)
    t_stage = time.perf_counter()
    setup = Setup(config)
    task = setup.task
    steps_per_epoch = setup.steps_per_epoch
    total_steps = setup.total_steps
    # Everything that can be refused is checked before the workdir is touched.
    try:
        train_ds = task.dataset("train", train=True, seed=config.seed,
                                num_epochs=tcfg.num_epochs, process_index=jax.process_index(),
                                process_count=jax.process_count())
    except ValueError as e:
        raise ConfigError(f"split 'train' with training.batch_size={tcfg.batch_size}: {e}"
                          ) from None
    _check_validation_split(config, task)
    lead = jax.process_index() == 0
    if lead and progress:
        print(f"data: train {task.num_examples('train')} / validation "
              f"{task.num_examples('validation')} examples, batch {tcfg.batch_size}, "
              f"{steps_per_epoch} steps per epoch x {tcfg.num_epochs} epochs "
              f"({time.perf_counter() - t_stage:.1f} s)", flush=True)
    if jax.process_index() == 0:
        if overwrite and resuming:
            _clear_run(workdir_path)
        workdir_path.mkdir(parents=True, exist_ok=True)
        (workdir_path / "config.json").write_text(config_to_json(config))

    ckpts = Checkpoints(workdir_path, best_metric=task.selection_metric(),
                        best_mode=task.selection_mode())
    data_iter = iter(train_ds)
    start = ckpts.latest_step()
    window: list[dict[str, float]] = []  # metrics since the last log line (checkpointed)
    t_window = time.perf_counter()
    if start is not None:
        state, log_state = ckpts.restore_latest(setup.abstract_sharded, data_iter,
                                                with_log=True)
        start = int(state.step)
        if jax.process_index() == 0:
            print(f"resuming {workdir_path} from step {start} of {total_steps}", flush=True)
        if log_state is not None:
            window = [dict(m) for m in log_state["window"]]
            t_window -= float(log_state["seconds"])
    else:
        t_stage = time.perf_counter()
        state = setup.init_state()
        start = 0
        if lead and progress:
            count = sum(x.size for x in jax.tree_util.tree_leaves(state.params))
            print(f"model: {count:,} parameters on {setup.mesh.size} device(s), initialised "
                  f"in {time.perf_counter() - t_stage:.1f} s", flush=True)
    t_train = time.perf_counter()
    writer = MetricWriter(workdir_path, resume_step=start if start else None)
    if start == 0:
        writer.write(0, {"param_count": sum(x.size for x in
                                            jax.tree_util.tree_leaves(state.params)),
                         "steps_per_epoch": steps_per_epoch, "total_steps": total_steps,
                         "num_devices": setup.mesh.size, "num_processes": jax.process_count(),
                         "platform": jax.devices()[0].platform})
    train_step = shd.meet_after_compiling(setup.make_train_step(), "train_step")
    dropout_rng = jax.random.fold_in(jax.random.key(config.seed), 1)
    predict_step = shd.meet_after_compiling(setup.make_predict_step(), "predict_step")
    flag = PreemptionFlag()
    bar = Progress(total_steps, initial=start, desc=f"train {config.get('name', config.task)}",
                   enabled=progress)
    log_every = max(1, int(tcfg.log_every_steps))
    ckpt_every = int(tcfg.checkpoint_every_steps or 0)
    eval_every = max(1, int(tcfg.get("eval_every_epochs", 1))) * steps_per_epoch
    patience = int(tcfg.get("early_stop_evals", 0) or 0)
    step = start
    stopped_early = early_stopped = False

    def log_state() -> dict:
        return {"window": window, "seconds": time.perf_counter() - t_window}

    try:
        while step < total_steps:
            if patience and _patience_spent(ckpts.best_step(), step, eval_every, patience):
                # A function of the checkpointed best step: a resumed run stops at the same step.
                bar.write(f"early stop at step {step}: validation {task.selection_metric()} "
                          f"has not improved for {patience} evaluations (best: step "
                          f"{ckpts.best_step()})")
                early_stopped = True
                break
            batch = next(data_iter, None)
            if batch is None:
                raise RuntimeError(f"train data ran out at step {step} of {total_steps}")
            state, metrics = train_step(
                state, shd.global_batch(task.device_batch(batch), setup.mesh), dropout_rng)
            metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
            state_finite = metrics.pop(STATE_FINITE) > 0.5
            if not state_finite and math.isfinite(metrics["loss"]):
                state_finite = state_is_finite(state)  # the screen's sum overflowed?
            step += 1
            if not (math.isfinite(metrics["loss"]) and state_finite):
                writer.write(step, {"train/loss": metrics["loss"], "error": "non-finite"})
                raise NonFiniteLossError(_non_finite_message(
                    step, metrics["loss"], ckpts, batch_ids(batch, task.host_keys)))
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
                ckpts.save_latest(step, state, data_iter, log_state())
            elif ckpt_every and step % ckpt_every == 0:
                ckpts.save_latest(step, state, data_iter, log_state())
            preempted = flag.is_set
            if jax.process_count() > 1 and step % log_every == 0:
                preempted = bool(np.any(shd.gather_rows(np.array([preempted]))))
            if preempted or (stop_after_steps is not None and step - start >= stop_after_steps):
                ckpts.save_latest(step, state, data_iter, log_state())
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
                               "total_steps": total_steps,
                               "finished": step >= total_steps or early_stopped,
                               "stopped_early": stopped_early, "early_stopped": early_stopped,
                               "best_step": best_step}
    if best_step is not None:
        summary["best_validation"] = ckpts.best.metrics(best_step)
    ckpts.close()
    if lead and progress:
        sel = task.selection_metric()
        best = summary.get("best_validation", {}).get(sel)
        print(f"done: {step - start} steps in {(time.perf_counter() - t_train) / 60:.1f} min"
              + (f"; best validation {sel}={best:.4f} at step {best_step}"
                 if best is not None else ""), flush=True)
    if jax.process_index() == 0:
        from jaxaffect.plots import plot_training_curves

        plot_training_curves(read_metrics(writer.path), str(workdir_path / "training_curves.png"),
                             keys=("train/loss", f"val/{task.selection_metric()}"),
                             title=f"{config.get('name', config.task)}: training curves",
                             best_step=best_step)
        (workdir_path / "train_summary.json").write_text(json.dumps(summary, indent=2,
                                                                    default=float))
    return summary
