"""Import the authors' released PyTorch AMER weights (sunlightsgy/MEmoR, ``data/pretrained`` of
the MEmoR download: one model for the primary and one for the fine-grained emotions) into our
:class:`jaxaffect.families.amer.amer_model.AMER` parameters.

The released files are what the authors' trainer saves (``base/base_trainer.py``):
``torch.save({"arch", "epoch", "state_dict", "optimizer", "monitor_best", "config"})`` with
torch 1.4 (the legacy format; the zip format is read too). ``config`` is their
``parse_config.ConfigParser`` object, which holds ``pathlib`` paths: the reader
(:func:`jaxaffect.torch_checkpoint.read_state_dict`) unpickles those globals (and numpy scalars)
as inert :class:`TrainerObject` stand-ins, nothing of theirs runs, and every other non-tensor
global is refused as for LIReC. The state dict (``nn.Linear`` weights ``[out, in]``):

* ``enc_a``, ``enc_t``, ``enc_v``, ``enc_p``, ``out_layer``: ``nn.Sequential`` of Linear and
  ReLU, Linear at indices 0, 2, 4 -> our ``enc_audio``, ``enc_text``, ``enc_visual``,
  ``enc_personality``, ``classifier``, sub-modules ``layers_0``, ``layers_1``, ``layers_2``;
* ``fusion_layer`` -> ``fusion``. The authors concatenate ``[v; a; t; p]`` (each modality
  block being its encoding followed by the personality encoding), we ``[a; t; v; p]``
  (the paper's order): the kernel's input rows are permuted by block.

Every ``kernel`` is ``weight.T``. Sizes come from the shapes; the authors' attention temperature
is ``sqrt(4 D_e)`` while ours is ``sqrt(d)`` of the attended features, equal exactly when every
encoder ends in ``2 D_e`` and the fusion layer has ``4 D_e`` outputs -- what their code builds,
so anything else is refused. 9 classes are the primary emotions, 14 the fine-grained ones.

Output (:func:`convert_checkpoint`): ``params.npz`` (flat ``"enc_audio/layers_0/kernel"`` keys,
float32) and ``amer.json`` (AMER field values incl. ``released_code=True`` and the authors'
text encoder sizes, the label set, input sizes, the config overrides that train/evaluate the
same model, key map, source). :func:`load_converted` rebuilds ``(AMER, {"params": ...})``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from jaxaffect.torch_checkpoint import READERS, CheckpointError, file_sha256, read_state_dict

PARAMS_FILE = "params.npz"
CONFIG_FILE = "amer.json"
FORMAT = "jaxaffect.amer.params"
FORMAT_VERSION = 1
LABELS_BY_CLASSES: dict[int, str] = {9: "primary", 14: "fine"}
# The authors' nn.Sequential attributes -> (our sub-module, our AMER size field).
STACKS: dict[str, tuple[str, str | None]] = {
    "enc_a": ("enc_audio", "audio_sizes"), "enc_t": ("enc_text", "text_sizes"),
    "enc_v": ("enc_visual", "visual_sizes"), "enc_p": ("enc_personality", "personality_sizes"),
    "out_layer": ("classifier", None)}
INPUTS: dict[str, str] = {"enc_a": "audio", "enc_t": "text", "enc_v": "visual",
                          "enc_p": "personality"}
# Linear layers per stack in the authors' code (their depths are fixed).
DEPTHS: dict[str, int] = {"enc_a": 3, "enc_t": 2, "enc_v": 3, "enc_p": 2, "out_layer": 2}
RELEASED_FUSION_ORDER: tuple[str, ...] = ("visual", "audio", "text")  # then personality
OUR_FUSION_ORDER: tuple[str, ...] = ("audio", "text", "visual")


class TrainerObject:
    """Stands for a non-tensor object the authors' trainer pickles next to the weights (their
    ``ConfigParser``, ``pathlib`` paths, a numpy scalar should ``monitor_best`` be one).
    Unpickling only stores arguments and state here."""

    def __init__(self, *args: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


TRAINER_STAND_INS: dict[str, type] = {
    name: TrainerObject for name in (
        "parse_config.ConfigParser", "pathlib.PosixPath", "pathlib.WindowsPath",
        "pathlib.PurePosixPath", "pathlib.PureWindowsPath",
        # a numpy float64 pickles as scalar(dtype, bytes); bytes as _codecs.encode(str, codec)
        "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype",
        "_codecs.encode")}


# --------------------------------------------------------------------------------------------
# Key mapping and sizes
# --------------------------------------------------------------------------------------------

def released_keys() -> dict[str, tuple[str, ...]]:
    """Every key of the authors' AMER state dict -> our parameter path (no "params" root)."""
    out: dict[str, tuple[str, ...]] = {}
    for name, depth in DEPTHS.items():
        for i in range(depth):  # Linear at even indices, ReLU between
            for leaf, ours in (("weight", "kernel"), ("bias", "bias")):
                out[f"{name}.{2 * i}.{leaf}"] = (STACKS[name][0], f"layers_{i}", ours)
    out["fusion_layer.weight"], out["fusion_layer.bias"] = ("fusion", "kernel"), ("fusion", "bias")
    return out


def check_keys(sd: dict[str, np.ndarray]) -> None:
    """Refuses a state dict with keys the authors' AMER does not have or lacking any of its
    keys (named), or whose weights are not 2-d and biases not 1-d."""
    known = released_keys()
    unknown = sorted(set(sd) - set(known))
    if unknown:
        raise CheckpointError(f"keys that are not part of the authors' AMER: {unknown}")
    missing = [k for k in known if k not in sd]
    if missing:
        raise CheckpointError(f"the state_dict lacks {missing}")
    for key, value in sd.items():
        want = 2 if key.endswith(".weight") else 1
        if np.ndim(value) != want:
            raise CheckpointError(f"{key}: expected a {want}-d tensor, got shape "
                                  f"{np.shape(value)}")


def amer_fields(sd: dict[str, np.ndarray]) -> tuple[dict[str, Any], dict[str, int]]:
    """AMER field values and input sizes implied by a released state dict (after
    :func:`check_keys`)."""
    fields: dict[str, Any] = {"modalities": OUR_FUSION_ORDER, "use_personality": True,
                              "intra_personal": True, "inter_personal": True,
                              "released_code": True}
    dims: dict[str, int] = {}
    for name, (_, field) in STACKS.items():
        sizes = tuple(int(sd[f"{name}.{2 * i}.weight"].shape[0]) for i in range(DEPTHS[name]))
        if field is not None:
            fields[field] = sizes
            dims[INPUTS[name]] = int(sd[f"{name}.0.weight"].shape[1])
        else:
            fields["classifier_sizes"], fields["num_classes"] = sizes[:-1], sizes[-1]
    fields["fusion_size"] = int(sd["fusion_layer.weight"].shape[0])
    d_p = fields["personality_sizes"][-1]
    ends = {m: fields[f"{m}_sizes"][-1] for m in OUR_FUSION_ORDER}
    # Their temperature is sqrt(4 D_e) everywhere, ours sqrt(d) of the attended features.
    if any(e != d_p for e in ends.values()) or fields["fusion_size"] != 2 * d_p:
        raise CheckpointError(
            f"encoder outputs {dict(ends, personality=d_p)} and fusion size "
            f"{fields['fusion_size']} are not the authors' 2 D_e / 4 D_e layout")
    if fields["num_classes"] not in LABELS_BY_CLASSES:
        raise CheckpointError(f"out_layer has {fields['num_classes']} classes; the authors' "
                              "models have 9 (primary) or 14 (fine-grained)")
    return fields, dims


def _fusion_blocks(fields: dict[str, Any]) -> dict[str, slice]:
    """Column ranges of the released fusion weight's input blocks (v, a, t, personality)."""
    d_p = fields["personality_sizes"][-1]
    sizes = {m: fields[f"{m}_sizes"][-1] + d_p for m in RELEASED_FUSION_ORDER}
    sizes["personality"] = d_p
    blocks, start = {}, 0
    for m, n in sizes.items():
        blocks[m] = slice(start, start + n)
        start += n
    return blocks


def expected_shapes(fields: dict[str, Any], dims: dict[str, int]) -> dict[tuple[str, ...], tuple]:
    """Our parameter shapes for those fields and input sizes (``jax.eval_shape``, no compute)."""
    import jax
    import jax.numpy as jnp

    from jaxaffect.families.amer.amer_model import AMER

    spec = lambda *s, dt=jnp.float32: jax.ShapeDtypeStruct(s, dt)
    batch = {m: spec(1, 1, 1, dims[m]) for m in OUR_FUSION_ORDER}
    batch.update({f"{m}_present": spec(1, 1, 1, dt=jnp.bool_) for m in OUR_FUSION_ORDER})
    batch.update(person_mask=spec(1, 1, dt=jnp.bool_), segment_mask=spec(1, 1, dt=jnp.bool_),
                 personality=spec(1, 1, dims["personality"]), persons=spec(1, 1, dt=jnp.int32),
                 target_person=spec(1, dt=jnp.int32), target_segment=spec(1, dt=jnp.int32))
    model = AMER(**fields)
    shapes = jax.eval_shape(lambda b: model.init(jax.random.key(0), b), batch)["params"]
    flat = jax.tree_util.tree_flatten_with_path(shapes)[0]
    return {tuple(k.key for k in path): tuple(leaf.shape) for path, leaf in flat}


def convert_state_dict(sd: dict[str, np.ndarray]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Map a released ``state_dict`` onto our parameters.

    Returns ``(params, info)``: ``params`` the nested float32 tree for ``AMER(**info["amer"])``
    (apply with ``{"params": params}``); ``info`` with "amer" (field values), "labels"
    ("primary" | "fine"), "input_dims", "d_e" and "key_map" (released key -> our path). Every
    key must be used and every shape must fit; errors name the key.
    """
    from flax import traverse_util

    check_keys(sd)
    key_map = released_keys()
    fields, dims = amer_fields(sd)
    blocks = _fusion_blocks(fields)
    flat: dict[tuple[str, ...], np.ndarray] = {}
    for key, path in key_map.items():
        value = np.asarray(sd[key], dtype=np.float32)
        if path == ("fusion", "kernel"):
            total = blocks["personality"].stop
            if value.shape[1] != total:
                raise CheckpointError(
                    f"{key}: shape {value.shape} has {value.shape[1]} inputs, the encoders give "
                    f"{total} (v, a, t blocks of encoder + personality, then personality)")
            order = (*OUR_FUSION_ORDER, "personality")
            value = np.concatenate([value[:, blocks[m]] for m in order], axis=1)
        flat[path] = np.ascontiguousarray(value.T if path[-1] == "kernel" else value)
    expected = expected_shapes(fields, dims)
    if set(expected) != set(flat):  # the mapping and the model disagree: a bug of ours
        raise AssertionError(f"AMER parameters {sorted(expected)} != mapped {sorted(flat)}")
    for key, path in key_map.items():
        if flat[path].shape != expected[path]:
            raise CheckpointError(
                f"{key}: shape {tuple(sd[key].shape)} does not fit {'/'.join(path)} of shape "
                f"{expected[path]} (PyTorch Linear weights are [out, in], our kernels "
                "[in, out])")
    info = dict(amer=fields, labels=LABELS_BY_CLASSES[fields["num_classes"]], input_dims=dims,
                d_e=fields["personality_sizes"][-1] // 2,
                key_map={k: "/".join(p) for k, p in key_map.items()})
    return traverse_util.unflatten_dict(flat), info


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

def read_released(path: str, reader: str = "auto") -> tuple[dict[str, np.ndarray], dict]:
    """The state dict of a released file and its plain top-level values (epoch, arch,
    monitor_best, reader); the trainer's config object is read as an inert stand-in and
    dropped."""
    return read_state_dict(path, reader=reader, stand_ins=TRAINER_STAND_INS)


def config_overrides(info: dict[str, Any]) -> dict[str, Any]:
    """The ``configs/amer/amer.py`` values that give the converted model (``--config.<key>``)."""
    f = info["amer"]
    out: dict[str, Any] = {"model.name": "amer", "model.released_code": True,
                           "model.modalities": list(OUR_FUSION_ORDER),
                           "data.labels": info["labels"]}
    for key in ("audio_sizes", "text_sizes", "visual_sizes", "personality_sizes",
                "classifier_sizes"):
        out[f"model.{key}"] = list(f[key])
    out["model.fusion_size"] = f["fusion_size"]
    return out




def convert_checkpoint(path: str, out_dir: str, *, reader: str = "auto") -> dict[str, Any]:
    """Convert a released AMER checkpoint into ``out_dir/params.npz`` + ``out_dir/amer.json``.

    Errors (a file that is not a torch.save checkpoint, a refused object, a missing, unknown or
    misshapen parameter) raise :class:`CheckpointError` naming the file and the key. Returns the
    metadata written to ``amer.json`` plus the two output paths.
    """
    from flax import traverse_util

    sd, extra = read_released(path, reader)
    try:
        params, info = convert_state_dict(sd)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / PARAMS_FILE, **traverse_util.flatten_dict(params, sep="/"))
    meta = dict(
        format=FORMAT, format_version=FORMAT_VERSION, labels=info["labels"], d_e=info["d_e"],
        amer={k: list(v) if isinstance(v, tuple) else v for k, v in info["amer"].items()},
        input_dims=info["input_dims"], config_overrides=config_overrides(info),
        config_arg=f"model=amer,labels={info['labels']},released",
        key_map=info["key_map"],
        source=dict(path=os.path.abspath(path), file=os.path.basename(path),
                    sha256=file_sha256(path), **extra),
        note=("fusion_layer input blocks permuted from the authors' v, a, t, p to a, t, v, p; "
              "released_code=True gives their attention edge cases (a row with no present key "
              "averages all real entries, no person-level attention for one person); the "
              "inputs must have the sizes in input_dims"))
    (out / CONFIG_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True))
    return dict(meta, params_path=str(out / PARAMS_FILE), config_path=str(out / CONFIG_FILE))


def load_params(out_dir: str) -> dict[str, Any]:
    """The nested float32 parameter tree of a :func:`convert_checkpoint` folder (numpy)."""
    from flax import traverse_util

    with np.load(Path(out_dir) / PARAMS_FILE) as npz:
        return traverse_util.unflatten_dict({k: npz[k] for k in npz.files}, sep="/")


def load_converted(out_dir: str) -> tuple[Any, dict[str, Any]]:
    """``(model, variables)`` from a :func:`convert_checkpoint` folder:
    ``model.apply(variables, batch)`` with the batch layout of the AMER model."""
    import jax.numpy as jnp
    from jax import tree_util

    from jaxaffect.families.amer.amer_model import AMER

    meta = json.loads((Path(out_dir) / CONFIG_FILE).read_text())
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{out_dir}: not a converted AMER folder of format {FORMAT} "
                              f"v{FORMAT_VERSION}")
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["amer"].items()}
    params = tree_util.tree_map(jnp.asarray, load_params(out_dir))
    return AMER(**fields), {"params": params}


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of `jaxaffect convert memor`."""
    parser.add_argument("checkpoint", help="a released AMER .pth (e.g. data/pretrained/*.pth "
                                           "of the MEmoR download; torch is optional)")
    parser.add_argument("out_dir", help="where params.npz and amer.json go")
    parser.add_argument("--reader", default="auto", choices=list(READERS),
                        help="torch.load when torch is installed, else the built-in reader "
                             "(tensors, plain containers and the trainer's config object only)")


def run_cli(args: argparse.Namespace) -> dict[str, Any]:
    """`jaxaffect convert memor`: converts and returns the summary printed."""
    meta = convert_checkpoint(args.checkpoint, args.out_dir, reader=args.reader)
    return {k: meta[k] for k in ("labels", "d_e", "amer", "input_dims", "config_arg",
                                 "params_path")}


def main(argv: list[str] | None = None) -> int:
    """``python -m jaxaffect.families.amer.convert CHECKPOINT OUT_DIR [--reader R]``."""
    ap = argparse.ArgumentParser(description="Convert a released AMER .pth checkpoint.")
    add_convert_arguments(ap)
    print(json.dumps(run_cli(ap.parse_args(argv)), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
