"""Builds a TFDS dataset from a user's manual_dir (`jaxaffect build`); finds builders by convention.

A builder is a folder `tfds_builders/<name>/` holding `<name>_dataset_builder.py` with a class
`Builder` (the `tfds new` layout). Its module may define `check_manual_dir(manual_dir)` (or
`check_manual_dir(manual_dir, config=None)` when configs read different files), a cheap
check of the release that runs before TFDS starts, so a wrong path gives one line naming the
file rather than a TFDS assertion. Nothing here names a dataset: adding a builder folder is
enough for `jaxaffect build <name>` to offer it.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import pkgutil
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from jaxaffect.errors import ConfigError

if TYPE_CHECKING:
    from jaxaffect.data.release_files import Conversions

BUILDERS_PACKAGE = "tfds_builders"
FILE_FORMATS = ("tfrecord", "array_record")


def data_home() -> str:
    """Where demos keep synthetic corpora and their builds ($JAXAFFECT_HOME, else
    ~/.cache/jaxaffect)."""
    return os.environ.get("JAXAFFECT_HOME", str(Path("~/.cache/jaxaffect").expanduser()))


def synthetic_data_dir(corpus: str) -> str:
    """The TFDS data_dir of a synthetic corpus under `data_home()` (configs' data=synthetic)."""
    return str(Path(data_home()) / f"synthetic_{corpus}" / "tfds")


STAGING_MARKER = ".jaxaffect_partial_corpus"


def stage_corpus(out: str | os.PathLike, params: dict, read_previous: Callable[[Path], dict],
                 *, what: str) -> tuple[dict | None, Path | None]:
    """Where a synthetic corpus writer writes: (previous summary, None) when `out` already
    holds a corpus written with the same `params` (`read_previous(out)` returns its summary,
    with a "parameters" entry), else (None, a fresh hidden staging folder beside `out`).

    A non-empty `out` holding anything else is refused, never overwritten; a staging folder
    left by an interrupted writer is cleared. `publish_corpus` moves the staging folder into
    place once the corpus is complete, so `out` is either absent or whole.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        try:
            previous = read_previous(out)
        except (OSError, ValueError, KeyError):
            previous = None
        if previous is not None and previous.get("parameters") == params:
            return previous, None
        raise FileExistsError(
            f"{out}: folder is not empty and is not a {what} written with the same "
            "parameters; pass an empty or new folder (or delete this one)")
    staging = out.parent / f".{out.name}.partial"
    if staging.exists():
        if not (staging / STAGING_MARKER).exists():
            raise FileExistsError(f"{staging}: exists and was not left by this generator")
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    (staging / STAGING_MARKER).touch()
    return None, staging


def publish_corpus(staging: Path, out: str | os.PathLike) -> None:
    """Moves a complete staged corpus to `out` (an absent or empty folder)."""
    out = Path(out)
    (staging / STAGING_MARKER).unlink()
    if out.exists():
        out.rmdir()  # empty (checked by stage_corpus)
    staging.rename(out)


def _module_name(name: str) -> str:
    return f"{BUILDERS_PACKAGE}.{name}.{name}_dataset_builder"


def available_datasets() -> tuple[str, ...]:
    """Names of the builder folders (read from the file system; nothing is imported)."""
    pkg = importlib.import_module(BUILDERS_PACKAGE)
    names = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.ispkg and any(Path(p, info.name, f"{info.name}_dataset_builder.py").is_file()
                              for p in pkg.__path__):
            names.append(info.name)
    return tuple(sorted(names))


def builder_module(name: str):
    if name not in available_datasets():
        raise ConfigError(f"unknown dataset {name!r}; available: {', '.join(available_datasets())}")
    return importlib.import_module(_module_name(name))


def builder_class(name: str) -> type:
    """The TFDS builder class of dataset `name`."""
    return builder_module(name).Builder


def _normalise_format(file_format: str) -> str:
    fmt = file_format.lower().replace("-", "_")
    fmt = {"arrayrecord": "array_record"}.get(fmt, fmt)
    if fmt not in FILE_FORMATS:
        raise ConfigError(f"file_format must be one of {FILE_FORMATS}, got {file_format!r}")
    return fmt


def builder_configs(name: str) -> tuple[str, ...]:
    """Names of the builder configs of dataset `name` (empty when it has none)."""
    return tuple(c.name for c in (builder_class(name).BUILDER_CONFIGS or ()))


def _builder(name: str, data_dir: str, config: str | None):
    cls = builder_class(name)
    configs = builder_configs(name)
    if config is not None and config not in configs:
        raise ConfigError(f"dataset {name!r} has no config {config!r}"
                         + (f"; configs: {', '.join(configs)}" if configs else " (it has none)"))
    kwargs = {"config": config} if config is not None else {}
    return cls(data_dir=os.fspath(data_dir), **kwargs)


def existing_build(name: str, data_dir: str, config: str | None = None) -> str | None:
    """The directory of a complete build of this dataset version in `data_dir`, else None."""
    with quiet_tfds():
        builder = _builder(name, data_dir, config)
        return os.fspath(builder.data_dir) if builder.is_prepared() else None


@contextlib.contextmanager
def quiet_tfds(progress: bool = False):
    """Silences TFDS's noise for manual builds: absl warnings about variant folders without
    dataset_info.json, the "Downloading and preparing dataset Unknown size" banner and its
    download lines, and (unless `progress`) its progress bars, whose shuffle ETAs mislead."""
    import io
    import logging

    import tensorflow_datasets as tfds

    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    if not progress:
        tfds.disable_progress_bar()
    banner = io.StringIO()
    try:
        with contextlib.redirect_stdout(banner):
            yield
    finally:
        absl_logger.setLevel(level)
        if not progress:
            tfds.enable_progress_bar()
        kept = [line for line in banner.getvalue().splitlines()
                if not line.startswith(("Downloading and preparing dataset",
                                        "Dataset ", "\x1b[1mDownloading", "\x1b[1mDataset "))]
        if kept:
            print("\n".join(kept))


def build_dataset(name: str, manual_dir: str, data_dir: str, file_format: str = "tfrecord",
                  *, num_shards: int | None = None, config: str | None = None,
                  overwrite: bool = False, allow: tuple[str, ...] = (),
                  beam_options: str | None = None) -> str:
    """Prepares dataset `name` from `manual_dir` into `data_dir`; returns the builder directory.

    `config` picks a builder config (e.g. bilibili_tsc's lexicon: dutir, nrc or custom); None
    uses the builder's default.

    `num_shards` fixes the number of record files per split (default: TFDS sizes shards at
    64 MiB-1 GiB); several shards let TFRecord readers interleave files.

    A complete build already in `data_dir` is reused and the manual_dir is not read (see
    `existing_build`), unless `overwrite`: then the new build is written beside the old one
    and replaces it only once it is complete (a failed rebuild leaves the old build as it was).
    If a kept build was written in another file format a ValueError says so. A malformed or
    missing file of the manual_dir raises a `jaxaffect.errors.FormatError` naming the file; a
    failed build leaves no partial directory behind. `allow` names what the user explicitly
    accepts (see `jaxaffect.data.release_files.ALLOWANCES`); nothing else is let through.

    Arrays converted on the way (float64 features stored as float32, 0/1 integer masks stored
    as bool) are counted: a successful build prints one `note:` line per kind on stderr, with
    the count and the first array, and records them in its metadata.json
    ("release_conversions").

    `beam_options` (command-line style, e.g. "--runner=DirectRunner --direct_num_workers=2")
    runs the build as an Apache Beam pipeline with those options, passed to Beam unchanged
    (any runner); only builders whose class sets `SUPPORTS_BEAM` take it. None: in process.
    """
    with _allowances(allow):
        return _build(name, manual_dir, data_dir, file_format, num_shards=num_shards,
                      config=config, overwrite=overwrite, beam_options=beam_options)


def _pipeline_options(name: str, beam_options: str | None):
    """Beam's PipelineOptions of `beam_options` (None: an in-process build)."""
    if beam_options is None:
        return None
    if not getattr(builder_class(name), "SUPPORTS_BEAM", False):
        raise ConfigError(f"dataset {name!r} has no Beam pipeline; build it without "
                          "--beam_options")
    try:
        from apache_beam.options.pipeline_options import PipelineOptions
    except ImportError as e:
        raise ConfigError(f"--beam_options needs apache-beam (pip install 'jaxaffect[beam]'): "
                          f"{e}") from None
    import shlex

    return PipelineOptions(flags=shlex.split(beam_options))


@contextlib.contextmanager
def _allowances(allow: tuple[str, ...]):
    from jaxaffect.data.release_files import allowance_env

    names = {allowance_env(a): "1" for a in allow}
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(names)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _build(name: str, manual_dir: str, data_dir: str, file_format: str, *,
           num_shards: int | None, config: str | None, overwrite: bool,
           beam_options: str | None) -> str:
    from jaxaffect.data.release_files import collect_conversions

    # Arrays the release stores in another dtype than the build (float64 features, 0/1
    # integer masks) are converted; one note per kind ends a successful build.
    with collect_conversions(manual_dir) as conversions:
        path, built = _build_collecting(name, manual_dir, data_dir, file_format,
                                        num_shards=num_shards, config=config,
                                        overwrite=overwrite, conversions=conversions,
                                        beam_options=beam_options)
    if built:
        for line in conversions.notes():
            print(line, file=sys.stderr)
    return path


def _build_collecting(name: str, manual_dir: str, data_dir: str, file_format: str, *,
                      num_shards: int | None, config: str | None, overwrite: bool,
                      conversions: Conversions, beam_options: str | None
                      ) -> tuple[str, bool]:
    """(builder directory, whether this call wrote the build itself: not reused, and not
    rebuilt by a nested call, which reports its own conversions)."""
    import tensorflow_datasets as tfds

    fmt = _normalise_format(file_format)
    options = _pipeline_options(name, beam_options)
    module = builder_module(name)
    check = getattr(module, "check_manual_dir", None)
    if check is not None:
        # A builder whose configs read different files takes the config: check(dir, config=).
        takes_config = "config" in inspect.signature(check).parameters
        check(os.fspath(manual_dir), **({"config": config} if takes_config else {}))
    with quiet_tfds():
        builder = _builder(name, data_dir, config)
        prepared = builder.is_prepared()
    if prepared and overwrite:
        return _rebuild_beside(name, manual_dir, data_dir, fmt, num_shards, config,
                               os.fspath(builder.data_dir), beam_options), False
    if prepared:
        existing = builder.info.file_format.value if builder.info.file_format else "tfrecord"
        if existing != fmt:
            raise ConfigError(
                f"{builder.data_dir} already holds a complete {existing} build of {name!r}; "
                f"it is kept. Use another data_dir, or --overwrite, for a {fmt} build.")
        return os.fspath(builder.data_dir), False
    # Written into metadata.json with the build (every builder here has a MetadataDict).
    conversions.attach(builder.info.metadata)
    # A layout written by `jaxaffect extract` says how its features were made; `predict
    # --video` reads it back to extract a new video the same way.
    from jaxaffect.features.extraction import read_record

    record = read_record(manual_dir)
    if record is not None:
        builder.info.metadata["extraction"] = record
    with quiet_tfds():
        builder.download_and_prepare(
            file_format=fmt,
            download_config=tfds.download.DownloadConfig(
                manual_dir=os.fspath(manual_dir), num_shards=num_shards,
                beam_options=options),
        )
    return os.fspath(builder.data_dir), True


def _rebuild_beside(name: str, manual_dir: str, data_dir: str, fmt: str,
                    num_shards: int | None, config: str | None, old_dir: str,
                    beam_options: str | None = None) -> str:
    """Builds into a fresh folder under `data_dir`, then swaps it in for `old_dir`."""
    import shutil
    import uuid

    staging = Path(data_dir) / f".jaxaffect_rebuild_{uuid.uuid4().hex[:8]}"
    try:
        new_dir = build_dataset(name, manual_dir, str(staging), fmt, num_shards=num_shards,
                                config=config, beam_options=beam_options)
        old = Path(old_dir)
        backup = old.with_name(f".{old.name}.replaced_{uuid.uuid4().hex[:8]}")
        old.rename(backup)
        try:
            Path(new_dir).rename(old)
        except OSError:
            backup.rename(old)  # put the old build back
            raise
        shutil.rmtree(backup, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return old_dir
