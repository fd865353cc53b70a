"""The bilibili_tsc build as an Apache Beam pipeline (`jaxaffect build --beam_options ...`).

The same steps as the in-process build, spread over workers:

1. every danmaku file is scanned on its own (`video_scan.scan_video`) without the build's d_s;
2. the first kept video by name fixes d_s (a combine); a file read before that was decided is
   scanned again with the d_s when its feature file disagrees (rare), so skips and reasons are
   those of the in-process build, which reads the files in name order;
3. combines: the filter-stage counts, the vocabulary (word counts, then the ordered list), the
   report of skipped files and problems, the dead-letter list (file, line, reason);
4. the examples of every kept video, with the vocabulary as a side input.

The metadata and dead-letter list are written into the build folder by the pipeline; the
builder reads the metadata back after the run. Per-file outcomes are also Beam counters
(namespace `bilibili_tsc`). Any runner works: DirectRunner here, Dataflow / Flink / Spark with
their options (README.md).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from etils import epath

from jaxaffect.data.release_files import allowance_env
from jaxaffect.families.tam import tsc_corpus as tsc
from tfds_builders.bilibili_tsc import video_scan as vs

NAMESPACE = "bilibili_tsc"
COUNTERS = ("files_skipped", "malformed_rows", "repeated_rows", "videos_kept", "comments_kept",
            "comments_after_features", "examples")

_First = tuple[str, dict[str, int]]  # (danmaku file name, its d_s) of the first kept video


class _Scanner(beam.DoFn):
    """Scans danmaku files; with `first` (the first kept video), rescans a later one whose
    feature sizes differ, as the in-process build would have read it."""

    def __init__(self, manual_dir: str, settings: vs.Settings, allow_symlinks: bool):
        self._manual_dir = manual_dir
        self._settings = settings
        self._allow_symlinks = allow_symlinks

    def setup(self) -> None:
        if self._allow_symlinks:  # the user's allowance, on every worker
            os.environ[allowance_env("symlinks")] = "1"
        self._root = epath.Path(self._manual_dir)
        self._lexicon = vs.make_lexicon(self._settings, self._root)
        self._normalize = tsc.word_normalizer(self._settings.lexicon)

    def scan(self, name: str, dims: dict[str, int] | None) -> vs.VideoScan:
        return vs.scan_video(self._root, name, self._settings, self._lexicon, self._normalize,
                             dims)

    def process(self, element: Any, first: _First | None = None) -> Iterator[vs.VideoScan]:
        if isinstance(element, str):  # step 1: a danmaku file name
            yield self.scan(element, None)
            return
        entry: vs.VideoScan = element  # step 2: a scan, to decide against the first video
        if (first is not None and entry.has_features and entry.name > first[0]
                and entry.feature_dims != first[1]):
            entry = self.scan(entry.name, first[1])
        yield entry


class _FirstKept(beam.CombineFn):
    """The (name, d_s) of the kept video with the smallest name; None when none was kept."""

    def create_accumulator(self) -> _First | None:
        return None

    def add_input(self, acc: _First | None, item: _First) -> _First:
        return item if acc is None or item[0] < acc[0] else acc

    def merge_accumulators(self, accs: Iterable[_First | None]) -> _First | None:
        out = None
        for acc in accs:
            if acc is not None:
                out = self.add_input(out, acc)
        return out

    def extract_output(self, acc: _First | None) -> _First | None:
        return acc


class _SumStages(beam.CombineFn):
    """Filter-stage counts summed over danmaku files."""

    def create_accumulator(self) -> dict[str, int]:
        return {}

    def add_input(self, acc: dict[str, int], counts: dict[str, int]) -> dict[str, int]:
        return vs.sum_stage_counts([acc, counts])

    def merge_accumulators(self, accs: Iterable[dict[str, int]]) -> dict[str, int]:
        return vs.sum_stage_counts(accs)

    def extract_output(self, acc: dict[str, int]) -> dict[str, int]:
        return acc


class _Vocabulary(beam.CombineFn):
    """(word, count) pairs -> the build's vocabulary (`tsc_corpus.build_vocab`'s order)."""

    def __init__(self, min_count: int):
        self._min_count = min_count

    def create_accumulator(self) -> dict[str, int]:
        return {}

    def add_input(self, acc: dict[str, int], item: tuple[str, int]) -> dict[str, int]:
        acc[item[0]] = acc.get(item[0], 0) + item[1]
        return acc

    def merge_accumulators(self, accs: Iterable[dict[str, int]]) -> dict[str, int]:
        out: dict[str, int] = {}
        for acc in accs:
            for word, n in acc.items():
                out[word] = out.get(word, 0) + n
        return out

    def extract_output(self, acc: dict[str, int]) -> list[str]:
        return tsc.build_vocab((itertools.repeat(w, n) for w, n in acc.items()),
                               self._min_count)


class _Examples(beam.DoFn):
    """The (key, example) pairs of a kept video; the vocabulary index is built once per
    worker and vocabulary."""

    def setup(self) -> None:
        self._vocab: list[str] | None = None
        self._index: dict[str, int] = {}
        self._examples = Metrics.counter(NAMESPACE, "examples")

    def process(self, entry: vs.VideoScan, vocab: list[str], first: _First, written: int
                ) -> Iterator[tuple[str, dict[str, Any]]]:
        del written  # only orders the steps: the metadata file exists before any example
        if vocab is not self._vocab:
            self._vocab, self._index = vocab, tsc.vocab_index(vocab)
        video = entry.video
        feats, masks, seconds = vs.read_features(video.features, first[1])
        examples = tsc.video_examples(video.comments, feats, masks, seconds, self._index)
        self._examples.inc(len(examples))
        yield from examples


def _count(entry: vs.VideoScan) -> vs.VideoScan:
    """Adds one entry's outcome to the Beam counters."""
    for name, n in (("files_skipped", entry.skip is not None), ("malformed_rows", entry.problems),
                    ("repeated_rows", entry.repeats), ("videos_kept", entry.kept),
                    ("comments_kept", entry.num_comments),
                    ("comments_after_features", entry.outside)):
        if n:
            Metrics.counter(NAMESPACE, name).inc(int(n))
    return entry


def _words(entry: vs.VideoScan) -> Iterator[str]:
    for words in entry.video.comments.words:
        yield from words


def _metadata(_: Any, settings: vs.Settings, report: list[vs.VideoScan], vocab: list[str],
              stages: dict[str, int], first: _First | None, letters: list[str]
              ) -> dict[str, Any]:
    return vs.build_metadata(settings, vs.build_report(report), vocab, stages,
                             None if first is None else first[1], len(letters))


def _write_json(meta: dict[str, Any], path: str) -> int:
    epath.Path(path).write_text(json.dumps(meta))
    return int(meta["num_videos"])


def _write_lines(lines: list[str], path: str) -> None:
    vs.write_dead_letter(epath.Path(path), lines)


class TscExamples(beam.PTransform):
    """PBegin -> (key, example) of every kept video; writes `metadata_path` (the metadata.json
    entries as one JSON object; before the first example) and `dead_letter_path`."""

    def __init__(self, *, manual_dir: epath.Path, settings: vs.Settings, names: list[str],
                 metadata_path: epath.Path, dead_letter_path: epath.Path,
                 allow_symlinks: bool):
        super().__init__()
        self._manual_dir = os.fspath(manual_dir)
        self._settings = settings
        self._names = names
        self._metadata_path = os.fspath(metadata_path)
        self._dead_letter_path = os.fspath(dead_letter_path)
        self._allow_symlinks = allow_symlinks

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        side = beam.pvalue.AsSingleton
        scanner = _Scanner(self._manual_dir, self._settings, self._allow_symlinks)
        xml = [n for n in self._names if n.endswith(".xml")]
        scanned = (pbegin
                   | "DanmakuFiles" >> beam.Create(xml)
                   | "Spread" >> beam.Reshuffle()
                   | "Scan" >> beam.ParDo(scanner))
        first = (scanned
                 | "Kept" >> beam.Filter(lambda e: e.kept)
                 | "NameAndDims" >> beam.Map(lambda e: (e.name, e.feature_dims))
                 | "FirstKept" >> beam.CombineGlobally(_FirstKept()))
        decided = scanned | "Decide" >> beam.ParDo(scanner, first=side(first))
        others = [vs.not_danmaku(n) for n in self._names if not n.endswith(".xml")]
        if others:
            entries = ((decided, pbegin | "OtherEntries" >> beam.Create(others))
                       | "AllEntries" >> beam.Flatten())
        else:
            entries = decided
        entries = entries | "Count" >> beam.Map(_count)
        kept = decided | "KeptVideos" >> beam.Filter(lambda e: e.kept)
        vocab = (kept
                 | "Words" >> beam.FlatMap(_words)
                 | "WordCounts" >> beam.combiners.Count.PerElement()
                 | "Vocabulary" >> beam.CombineGlobally(_Vocabulary(self._settings.min_count)))
        stages = (entries
                  | "StageCounts" >> beam.Map(lambda e: e.stage_counts)
                  | "SumStages" >> beam.CombineGlobally(_SumStages()))
        report = (entries
                  | "ReportRows" >> beam.Map(lambda e: e.report())
                  | "Report" >> beam.combiners.ToList())
        letters = (entries
                   | "DeadLetters" >> beam.FlatMap(lambda e: e.dead_letter)
                   | "DeadLetterList" >> beam.combiners.ToList()
                   | "DeadLetterLines" >> beam.Map(vs.dead_letter_lines))
        _ = letters | "WriteDeadLetter" >> beam.Map(_write_lines, path=self._dead_letter_path)
        # Written before any example: a run that fails for want of examples can still be
        # explained from it (the builder refuses it as the in-process build does).
        metadata = beam.Map(_metadata, settings=self._settings, report=side(report),
                            vocab=side(vocab), stages=side(stages), first=side(first),
                            letters=side(letters))
        written = (pbegin
                   | "One" >> beam.Create([None])
                   | "Metadata" >> metadata
                   | "WriteMetadata" >> beam.Map(_write_json, path=self._metadata_path))
        return kept | "Examples" >> beam.ParDo(_Examples(), vocab=side(vocab), first=side(first),
                                               written=side(written))


def counters(pipeline_result: Any) -> dict[str, int]:
    """The pipeline's `bilibili_tsc` counters (committed values; 0 for one never incremented)."""
    found = {name: 0 for name in COUNTERS}
    query = pipeline_result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    for result in query["counters"]:
        value = result.committed if result.committed is not None else result.attempted
        found[result.key.metric.name] = found.get(result.key.metric.name, 0) + int(value)
    return found
