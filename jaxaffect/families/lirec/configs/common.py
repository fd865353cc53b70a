"""What every LIReC config shares: the arguments `released`, `data` and `runlocal`.

``finish(config, arg)`` applies the last two steps of every ``get_config``: the released code's
choices (``released``) and the tiny debug sizes (``runlocal``).
"""

from __future__ import annotations

from pathlib import Path

import ml_collections

from jaxaffect.config_loading import ConfigError
from jaxaffect.data.build import synthetic_data_dir
from jaxaffect.families.lirec import losses as ll

#: config arguments every LIReC config takes (their defaults)
ARGS: dict[str, object] = {"released": False, "data": "synthetic", "runlocal": False}
DATA_SOURCES: tuple[str, ...] = ("synthetic", "moviegraphs")


def data_dir(source: str) -> str:
    """TFDS data_dir of `source`: the demo's synthetic corpus, or ~/tensorflow_datasets."""
    if source not in DATA_SOURCES:
        raise ConfigError(f"data={source!r}: one of {DATA_SOURCES}")
    if source == "synthetic":
        return synthetic_data_dir("lirec")
    return str(Path("~/tensorflow_datasets").expanduser())


def apply_released_code(c: ml_collections.ConfigDict) -> None:
    """The released code's optimiser and loss choices (Adam 3e-5, coupled weight decay 1e-5,
    batch 64, margins 0.101, softmax sampling, no negatives in the column a*)."""
    c.model.released_code = True
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 3e-5
    c.optimizer.weight_decay = 1e-5
    c.training.batch_size = 64
    c.loss.margin_int = c.loss.margin_rel = ll.DEFAULT_MARGIN
    c.loss.sample_from = "softmax"
    c.loss.full_column_negatives = False


def apply_runlocal(c: ml_collections.ConfigDict) -> None:
    """Tiny sizes for a debug run."""
    c.model.joint_dim = c.model.track_hidden_dim = 32
    c.model.track_out_dim = 16
    c.model.int_hidden_dim = 32
    c.data.num_clips = 4
    c.training.num_epochs = 2
    c.training.batch_size = 8
    c.training.log_every_steps = 5


def finish(c: ml_collections.ConfigDict, arg: ml_collections.ConfigDict
           ) -> ml_collections.ConfigDict:
    """Applies `arg.released` and then `arg.runlocal` to `c` (in place) and returns it."""
    if arg.released:
        apply_released_code(c)
    if arg.runlocal:
        apply_runlocal(c)
    return c
