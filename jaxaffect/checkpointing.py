"""Orbax checkpoints of the train state and the grain iterator; preemption-safe saving.

Two managers live under `<workdir>/checkpoints/`:
- `latest/`: train state + data iterator + the trainer's logging window (so a resumed run logs
  the same running means as an uninterrupted one), saved every `checkpoint_every_steps`, at
  the end of every epoch and when SIGTERM arrives; resuming reads the newest one.
- `best/`: train state only, kept by the validation metric (model selection never reads test).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import grain
import orbax.checkpoint as ocp

LATEST = "latest"
BEST = "best"


class Checkpoints:
    def __init__(self, workdir: str | Path, *, keep: int = 2, best_metric: str = "macro_f1",
                 best_mode: str = "max"):
        if best_mode not in ("max", "min"):
            raise ValueError(f"best_mode={best_mode!r}: 'max' or 'min'")
        root = Path(workdir).absolute() / "checkpoints"
        self.root = root
        self.best_metric = best_metric
        self.best_mode = best_mode
        self.latest = ocp.CheckpointManager(
            root / LATEST,
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                                 enable_async_checkpointing=False),
            item_names=("state", "data", "log"),
        )
        self.best = ocp.CheckpointManager(
            root / BEST,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=1, create=True, best_fn=lambda m: float(m[best_metric]),
                best_mode=best_mode, enable_async_checkpointing=False),
            item_names=("state",),
        )

    # -- latest -------------------------------------------------------------------------------
    def latest_step(self) -> int | None:
        return self.latest.latest_step()

    def save_latest(self, step: int, state: Any, data_iter: Any | None,
                    log_state: dict | None = None, force: bool = True) -> None:
        if step in self.latest.all_steps():
            return
        items = {"state": ocp.args.StandardSave(state)}
        if data_iter is not None:
            items["data"] = grain.checkpoint.CheckpointSave(data_iter)
        if log_state is not None:
            items["log"] = ocp.args.JsonSave(log_state)
        self.latest.save(step, args=ocp.args.Composite(**items), force=force)
        self.latest.wait_until_finished()

    def restore_latest(self, abstract_state: Any, data_iter: Any | None,
                       step: int | None = None, with_log: bool = False) -> Any:
        """The state (and the data iterator, in place) of the newest `latest` checkpoint; with
        `with_log`, (state, log_state or None for checkpoints written without one)."""
        step = self.latest.latest_step() if step is None else step
        items = {"state": ocp.args.StandardRestore(abstract_state)}
        if data_iter is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iter)
        has_log = (self.root / LATEST / str(step) / "log").is_dir()
        if with_log and has_log:
            items["log"] = ocp.args.JsonRestore()
        restored = self.latest.restore(step, args=ocp.args.Composite(**items))
        if not with_log:
            return restored["state"]
        return restored["state"], (restored["log"] if has_log else None)

    # -- best ---------------------------------------------------------------------------------
    def best_step(self) -> int | None:
        return self.best.best_step()

    def best_value(self) -> float | None:
        step = self.best.best_step()
        if step is None:
            return None
        metrics = self.best.metrics(step) if hasattr(self.best, "metrics") else None
        if metrics is None:
            return None
        return float(metrics[self.best_metric])

    def save_best(self, step: int, state: Any, metrics: dict[str, float]) -> bool:
        """Saves when `metrics[best_metric]` beats the kept one; returns whether it did."""
        current = self.best_value()
        value = metrics[self.best_metric]
        if current is not None:
            better = value > current if self.best_mode == "max" else value < current
            if not better:  # also False for NaN
                return False
        if step in self.best.all_steps():
            return False
        self.best.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state)),
                       metrics={k: float(v) for k, v in metrics.items()}, force=True)
        self.best.wait_until_finished()
        return True

    def restore_params(self, abstract_state: Any, which: str = BEST) -> tuple[Any, int]:
        """Restores a state from `best` (falls back to `latest` when no best exists)."""
        manager = self.best if which == BEST else self.latest
        step = manager.best_step() if which == BEST else manager.latest_step()
        if step is None and which == BEST:
            manager, step = self.latest, self.latest.latest_step()
        if step is None:
            raise FileNotFoundError(f"{self.root}: no checkpoint to restore")
        items = {"state": ocp.args.StandardRestore(abstract_state)}
        restored = manager.restore(step, args=ocp.args.Composite(**items))
        return restored["state"], step

    def close(self) -> None:
        self.latest.close()
        self.best.close()


def read_run_params(workdir: str | Path, which: str = BEST) -> tuple[Any, int]:
    """The parameters of another run's checkpoint as host numpy arrays, and its step.

    Needs no model or config of that run: shapes come from the checkpoint's own metadata.
    `which` is "best" (falling back to "latest") or "latest".
    """
    import jax

    root = Path(workdir).expanduser().absolute() / "checkpoints"
    candidates = [BEST, LATEST] if which == BEST else [LATEST]
    for name in candidates:
        steps = sorted(int(p.name) for p in (root / name).glob("[0-9]*")
                       if (p / "state").is_dir())
        if steps:
            # best/ keeps one step; latest/ keeps the newest last.
            path = root / name / str(steps[-1]) / "state"
            break
    else:
        raise FileNotFoundError(f"{root}: no {which} checkpoint to read parameters from")
    checkpointer = ocp.StandardCheckpointer()
    tree = checkpointer.metadata(path).item_metadata
    device = jax.local_devices()[0]
    abstract = jax.tree_util.tree_map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype,
                                       sharding=jax.sharding.SingleDeviceSharding(device)), tree)
    restored = checkpointer.restore(path, abstract)
    checkpointer.close()
    if "params" not in restored:
        raise ValueError(f"{path}: checkpoint has no 'params' entry")
    return jax.device_get(restored["params"]), int(steps[-1])


class PreemptionFlag:
    """Set by SIGTERM (and SIGINT if asked); the loop checks it, saves and stops cleanly."""

    def __init__(self, also_sigint: bool = False):
        self._event = threading.Event()
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return
        signals = [signal.SIGTERM] + ([signal.SIGINT] if also_sigint else [])
        for sig in signals:
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame):
        del signum, frame
        self._event.set()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def restore_handlers(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
