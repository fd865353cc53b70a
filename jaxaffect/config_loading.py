"""Config files and command-line overrides.

A config is a Python file with `get_config(arg: str | None) -> ml_collections.ConfigDict`, named
on the command line as `path/to/cfg.py:key=value,flag,...` (the part after ':' is passed to
get_config). Further `--config.a.b=value` flags override single fields, typed like the field.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path

import ml_collections

from jaxaffect.errors import ConfigError


def parse_arg(arg: str | None, defaults: dict) -> ml_collections.ConfigDict:
    """'a=1,b=x,runlocal' -> ConfigDict over `defaults` (bare names mean True)."""
    out = ml_collections.ConfigDict(dict(defaults))
    if not arg:
        return out
    for item in arg.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if key not in defaults:
            raise ConfigError(f"config argument {key!r} is unknown; known: {sorted(defaults)}")
        out[key] = _typed(value, defaults[key], key) if sep else True
    return out


def load_config(spec: str) -> ml_collections.ConfigDict:
    """Loads `file.py[:arg]` and calls its get_config(arg); see `resolve_config_path` for the
    names accepted."""
    path_str, _, arg = resolve_config_path(spec).partition(":")
    path = Path(path_str).expanduser()
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    module_name = f"jaxaffect_config_{abs(hash(str(path.resolve())))}"
    spec_obj = importlib.util.spec_from_file_location(module_name, path)
    if spec_obj is None or spec_obj.loader is None:
        raise ConfigError(f"{path}: cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec_obj)
    sys.modules[module_name] = module
    try:
        spec_obj.loader.exec_module(module)
    except SyntaxError as e:
        raise ConfigError(f"{path}:{e.lineno}: syntax error: {e.msg}") from None
    except Exception as e:  # an import or a statement of the file failed
        raise ConfigError(f"{path}: cannot be loaded ({type(e).__name__}: {e})") from None
    if not hasattr(module, "get_config"):
        raise ConfigError(f"{path}: defines no get_config(arg)")
    try:
        config = module.get_config(arg or None)
    except ConfigError:
        raise
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}:{arg}: {e}") from None
    config.config_file = str(path)
    config.config_arg = arg or ""
    return config


def resolve_config_path(spec: str) -> str:
    """`configs/<family>/<name>.py[:arg]` as given when that file exists, else
    `<family>/<name>.py` inside the installed family package."""
    path, sep, arg = spec.partition(":")
    if Path(path).expanduser().is_file():
        return spec
    parts = Path(path).parts
    parts = parts[1:] if parts[:1] == ("configs",) else parts
    if len(parts) == 2:
        import jaxaffect.families as families  # the package folder only; names no family

        candidate = Path(families.__file__).parent / parts[0] / "configs" / parts[1]
        if candidate.is_file():
            return str(candidate) + sep + arg
    return spec  # load_config reports the missing file


def _typed(value: str, current, key: str):
    if isinstance(current, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key}: expected a boolean, got {value!r}")
    if isinstance(current, int) and not isinstance(current, bool):
        try:
            return int(value)
        except ValueError as e:
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from e
    if isinstance(current, float):
        try:
            return float(value)
        except ValueError as e:
            raise ConfigError(f"{key}: expected a number, got {value!r}") from e
    if isinstance(current, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def apply_overrides(config: ml_collections.ConfigDict, overrides: list[str]) -> None:
    """Applies ['--config.a.b=v', ...] (or 'a.b=v') in order, in place."""
    for raw in overrides:
        item = raw[len("--config."):] if raw.startswith("--config.") else raw
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {raw!r}: expected --config.key=value")
        node = config
        parts = key.split(".")
        for p in parts[:-1]:
            if p not in node:
                raise ConfigError(f"override {raw!r}: no config field {key!r}")
            node = node[p]
        leaf = parts[-1]
        if leaf not in node:
            raise ConfigError(f"override {raw!r}: no config field {key!r}")
        node[leaf] = _typed(value, node[leaf], key)


def config_fields(config: ml_collections.ConfigDict | dict, prefix: str = ""
                  ) -> list[tuple[str, object]]:
    """(dotted name, value) of every non-section field of a config (or of its config.json
    dict): top-level ones first, then by section."""
    own, nested = [], []
    for key, value in config.items():
        if isinstance(value, (dict, ml_collections.ConfigDict)):
            nested += config_fields(value, f"{prefix}{key}.")
        else:
            own.append((f"{prefix}{key}", value))
    return own + nested


def config_to_json(config: ml_collections.ConfigDict) -> str:
    return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=str)


def config_from_json(text: str) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(json.loads(text))


# ------------------------------------------------------------------ sections shared by families

#: One-line descriptions of the fields every config has: the top-level ones and those of the
#: sections below (`jaxaffect.config_docs` adds the config files' own comments).
SHARED_FIELD_DOCS: dict[str, str] = {
    "task": "the Task class that trains and evaluates this config (a family's task name)",
    "name": "run name, shown in the training progress bar",
    "seed": "seed of parameter init, dropout and the training-data order",
    "config_file": "the config file this config was loaded from (set by load_config)",
    "config_arg": "the config argument after ':' (set by load_config)",
    "optimizer.name": "adam (torch-style coupled L2 weight decay) | adamw (decoupled) | sgd "
                      "(momentum 0.9)",
    "optimizer.learning_rate": "learning rate of the parameters outside param_groups (start "
                               "of the decay schedule)",
    "optimizer.weight_decay": "weight decay (adam, sgd: L2 term added to the gradient; adamw: "
                              "decoupled); 0: none",
    "optimizer.decay_every_epochs": "multiply the learning rates by decay_factor every this "
                                    "many epochs; 0: constant",
    "optimizer.decay_factor": "factor of the step decay (see decay_every_epochs)",
    "optimizer.grad_clip_norm": "clip gradients to this global norm; 0: no clipping",
    "optimizer.schedule": "step: decay_every_epochs steps (or constant) | cosine: linear warm-up "
                          "over warmup_epochs, then a cosine decay to 0 at the last step",
    "optimizer.warmup_epochs": "epochs of linear warm-up from 0 (schedule cosine)",
    "optimizer.param_groups": "((regex, learning rate), ...): parameters whose path matches "
                              "get that rate (first match wins); (): one rate",
    "training.num_epochs": "passes over the training split",
    "training.batch_size": "global batch size (all devices and processes together)",
    "training.log_every_steps": "average and write the training metrics every this many steps",
    "training.checkpoint_every_steps": "save the resumable latest checkpoint every this many "
                                       "steps; 0: only at evaluations",
    "training.eval_every_epochs": "evaluate on validation (keeping the best checkpoint) every "
                                  "this many epochs",
    "training.early_stop_evals": "stop when the validation selection metric has not improved "
                                 "for this many evaluations; 0: train all epochs",
    "mesh.data": "devices on the data-parallel mesh axis; -1: all devices not on fsdp or model",
    "mesh.fsdp": "devices that also split parameters and optimizer state; -1: all not on data",
    "mesh.model": "devices that split attention heads, feed-forward units and vocabularies "
                  "(tensor parallelism; the batch is replicated over them)",
    "mesh.min_shard_size": "under fsdp, parameters with fewer elements stay replicated",
    "mesh.num_devices": "> 0: use only the first n devices (single-process runs); 0: all",
    "init_from.workdir": "a run whose checkpoint's subtrees initialise the model; '': off",
    "init_from.which": "that run's checkpoint: best (else latest) | latest",
    "init_from.subtrees": "((source path, destination path), ...): parameter subtrees copied "
                          "from that run",
}


def optimizer_section(learning_rate: float, *, name: str = "adam", weight_decay: float = 0.0,
                      decay_every_epochs: int = 0, decay_factor: float = 0.1,
                      grad_clip_norm: float = 0.0, param_groups: tuple = (),
                      schedule: str = "step", warmup_epochs: float = 0.0
                      ) -> ml_collections.ConfigDict:
    """`config.optimizer` as `jaxaffect.optimizers.make_optimizer` reads it ("adam" weight decay is
    the coupled L2 of torch.optim.Adam; decay_every_epochs=0 keeps the rate constant;
    schedule="cosine" warms up linearly over warmup_epochs, then decays to 0 at the end of
    training; its two fields are absent from "step" configs, which keep their fields)."""
    section = {
        "name": name, "learning_rate": learning_rate, "weight_decay": weight_decay,
        "decay_every_epochs": decay_every_epochs, "decay_factor": decay_factor,
        "grad_clip_norm": grad_clip_norm, "param_groups": tuple(param_groups)}
    if schedule != "step":
        section.update(schedule=schedule, warmup_epochs=float(warmup_epochs))
    return ml_collections.ConfigDict(section)


def training_section(num_epochs: int, batch_size: int, *, log_every_steps: int = 50,
                     checkpoint_every_steps: int = 500, eval_every_epochs: int = 1,
                     early_stop_evals: int = 0) -> ml_collections.ConfigDict:
    """`config.training`; `early_stop_evals` > 0 adds early stopping (absent otherwise, so the
    configs that do not use it keep their fields)."""
    section = {
        "num_epochs": num_epochs, "batch_size": batch_size, "log_every_steps": log_every_steps,
        "checkpoint_every_steps": checkpoint_every_steps,
        "eval_every_epochs": eval_every_epochs}
    if early_stop_evals:
        section["early_stop_evals"] = early_stop_evals
    return ml_collections.ConfigDict(section)


def mesh_section() -> ml_collections.ConfigDict:
    """Every device on the `data` axis; `fsdp` > 1 splits parameters and optimizer state;
    `model` > 1 splits the layers that name heads / feed-forward / vocabulary axes (tensor
    parallelism, within one process); `num_devices` > 0 uses only the first n devices
    (single-process runs)."""
    return ml_collections.ConfigDict({"data": -1, "fsdp": 1, "model": 1,
                                      "min_shard_size": 4096, "num_devices": 0})


def init_from_section() -> ml_collections.ConfigDict:
    """`config.init_from`: another run's subtrees copied onto a fresh model (off when
    `workdir` is empty); see `jaxaffect.optimizers.load_pretrained`."""
    return ml_collections.ConfigDict({"workdir": "", "which": "best", "subtrees": ()})


def resolve_builder_dir(data: ml_collections.ConfigDict) -> str:
    """The prepared dataset a config names: `data.builder_dir`, else the newest version of
    `data.name` under `data.data_dir`."""
    from jaxaffect.data.records import builder_dir_for

    if data.get("builder_dir"):
        return str(Path(data.builder_dir).expanduser())
    return builder_dir_for(str(Path(data.data_dir).expanduser()), data.name)
