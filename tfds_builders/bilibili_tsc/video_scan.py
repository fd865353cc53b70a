"""One danmaku file of the bilibili_tsc manual_dir: parse, filter, check its features; and the
build report (metadata.json entries, dead-letter list) assembled from every file's result.

Shared by the in-process build and the Beam pipeline (`beam_pipeline`), so both keep, skip and
report the same things. Everything here is plain Python and numpy; `VideoScan` and its parts
pickle, so a Beam runner can ship them between workers.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import numpy as np
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
DEAD_LETTER_FILE = "dead_letter.jsonl"
# Kinds of dead-letter entries: a row or file not read, a repeated row dropped, a file skipped.
MALFORMED, REPEATED, SKIPPED = "malformed", "repeated_row", "skipped"


class LexiconConfig(Protocol):
    """The fields of the builder config that a build reads (`TscConfig` has them)."""

    lexicon: str
    min_count: int
    balance: bool


@dataclasses.dataclass(frozen=True)
class Settings:
    """A config's `LexiconConfig` fields as a plain value (what a Beam runner ships)."""

    lexicon: str
    min_count: int
    balance: bool

    @classmethod
    def of(cls, config: LexiconConfig) -> Settings:
        return cls(config.lexicon, config.min_count, config.balance)


def read_features(path: epath.Path, dims: Mapping[str, int] | None
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


def make_lexicon(config: LexiconConfig, manual_dir: epath.Path) -> EmotionLexicon:
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
            f"config {config.lexicon!r} needs the optional lexicon packages "
            f"(pip install 'jaxaffect[tsc]'): {e}") from e


def danmaku_entries(manual_dir: epath.Path) -> list[str]:
    """Names in manual_dir/danmaku/, sorted; refuses a manual_dir without any `*.xml`."""
    folder = manual_dir / DANMAKU_DIR
    names = sorted(e.name for e in folder.iterdir()) if folder.is_dir() else []
    if not any(n.endswith(".xml") for n in names):
        raise FormatError(f"{folder}: no danmaku .xml files found")
    return names


@dataclasses.dataclass(frozen=True)
class Video:
    """A kept video: its comments and where its features are."""

    comments: tsc.VideoComments
    segment_seconds: float
    features: epath.Path  # checked to lie inside the manual_dir


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A row or file of the manual_dir that was not used as it stands: `line` 1-based, None for
    a whole file."""

    file: str
    line: int | None
    kind: str
    reason: str

    def sort_key(self) -> tuple:
        return (self.file, -1 if self.line is None else self.line, self.kind, self.reason)

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "kind": self.kind, "reason": self.reason}


@dataclasses.dataclass(frozen=True)
class VideoScan:
    """What the scan of one `danmaku/` entry found (`video`: its comments, when it is kept).

    `feature_dims`: d_s of its feature file when that was read (the file may still have been
    skipped for its comments); `has_features`: whether the scan found that file (whose
    contents were then checked against the d_s it was given).
    """

    name: str
    stage_counts: dict[str, int] = dataclasses.field(default_factory=dict)
    problems: int = 0
    repeats: int = 0
    skip: dict[str, str] | None = None
    kept: bool = False
    num_comments: int = 0
    dead_letter: tuple[DeadLetter, ...] = ()
    video: Video | None = None
    feature_dims: dict[str, int] | None = None
    has_features: bool = False
    outside: int = 0
    linked: bool = False

    @property
    def order(self) -> tuple[bool, str]:
        """The in-process build's order: other entries of danmaku/ first, then the videos."""
        return (self.name.endswith(".xml"), self.name)

    @property
    def video_id(self) -> str:
        return self.name[: -len(".xml")]

    def report(self) -> VideoScan:
        """This scan without the comments and dead-letter entries (what `build_report` reads)."""
        return dataclasses.replace(self, video=None, dead_letter=())


def _skipped(name: str, file: str, reason: str, **fields: Any) -> VideoScan:
    log.warning("bilibili_tsc: skipping %s: %s", file, reason)
    return VideoScan(name=name, skip={"file": file, "reason": reason},
                     dead_letter=(*fields.pop("dead_letter", ()),
                                  DeadLetter(file, None, SKIPPED, reason)), **fields)


def not_danmaku(name: str) -> VideoScan:
    """An entry of danmaku/ whose name does not end in .xml (skipped)."""
    return _skipped(name, f"{DANMAKU_DIR}/{name}",
                    "not a danmaku file (the name does not end in .xml)")


def scan_video(manual_dir: epath.Path, name: str, config: LexiconConfig,
               lexicon: EmotionLexicon, normalize: Callable[[str], str],
               dims: Mapping[str, int] | None) -> VideoScan:
    """Scans danmaku/<name> and its feature file; `dims`: the d_s the build uses (None until a
    first video is kept). Never raises for bad data: the result says what was skipped and why."""
    vid = name[: -len(".xml")]
    rel_xml = f"{DANMAKU_DIR}/{name}"
    xml = manual_dir / DANMAKU_DIR / name
    try:
        inside(manual_dir, rel_xml, where=str(manual_dir / DANMAKU_DIR))
        raw = xml.read_bytes()
    except FormatError as e:
        return _skipped(name, rel_xml, str(e))
    except OSError as e:  # a folder named *.xml, no permission, ...
        return _skipped(name, rel_xml, f"cannot read: {e.strerror or e}")
    parsed = danmaku.parse_danmaku_bytes(raw, str(xml))
    for p in parsed.problems + parsed.repeats:
        log.warning("bilibili_tsc: %s", p)
    letters = tuple([DeadLetter(rel_xml, p.line, MALFORMED, p.reason) for p in parsed.problems]
                    + [DeadLetter(rel_xml, p.line, REPEATED, p.reason) for p in parsed.repeats])
    # Per-video seed: the balancing draw does not depend on which other videos are present.
    rng = np.random.default_rng(zlib.crc32(vid.encode("utf-8")))
    kept, counts = danmaku.preprocess(parsed.comments, lexicon, max_words=tsc.MAX_WORDS,
                                      balance=config.balance, rng=rng)
    found: dict[str, Any] = {"stage_counts": counts, "problems": len(parsed.problems),
                             "repeats": len(parsed.repeats), "dead_letter": letters}
    if not kept:
        why = f"{len(parsed.problems)} problem(s), " if parsed.problems else ""
        return _skipped(name, rel_xml, f"no usable comments ({why}stage counts {counts})",
                        **found)
    rel_npz = f"{av.FEATURE_DIR}/{vid}.npz"
    try:
        npz = epath.Path(inside(manual_dir, rel_npz, where=rel_xml))
    except FormatError as e:
        return _skipped(name, rel_npz, str(e), **found)
    found["has_features"] = npz.exists()
    try:
        feats, _, seconds = read_features(npz, dims)
    except FormatError as e:  # the entry names the file: the path prefix is dropped
        return _skipped(name, rel_npz, str(e).removeprefix(f"{npz}: "), **found)
    steps = next(iter(feats.values())).shape[0]
    found["feature_dims"] = {s: int(x.shape[1]) for s, x in feats.items()}
    vc, dropped = tsc.video_comments(vid, kept, lexicon, normalize, steps * seconds)
    found["outside"] = dropped
    if len(vc) == 0:
        return _skipped(name, rel_npz, f"all {dropped} kept comments lie after the end of the "
                                       f"features ({steps} segments x {seconds} s)", **found)
    linked = bool(outside_release(manual_dir, {"xml": xml, "npz": npz}))  # only when allowed
    return VideoScan(name=name, kept=True, num_comments=len(vc), video=Video(vc, seconds, npz),
                     linked=linked, **found)


# ------------------------------------------------------------------------------- the report


def sum_stage_counts(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Stage counts summed over danmaku files, in the filters' order."""
    total: dict[str, int] = {}
    for c in counts:
        for stage, n in c.items():
            total[stage] = total.get(stage, 0) + n
    return {s: total[s] for s in danmaku.STAGES if s in total}


def build_report(scans: Iterable[VideoScan]) -> dict[str, Any]:
    """The metadata.json entries of a build from every entry's scan (any order): skipped,
    problems, repeated_rows, outside_features, num_videos, num_comments and, when videos were
    read through allowed symlinks, symlinks_outside_release."""
    scans = sorted(scans, key=lambda s: s.order)
    kept = [s for s in scans if s.kept]
    report: dict[str, Any] = {
        "skipped": [s.skip for s in scans if s.skip is not None],
        "problems": {f"{DANMAKU_DIR}/{s.name}": s.problems for s in scans if s.problems},
        "repeated_rows": {f"{DANMAKU_DIR}/{s.name}": s.repeats for s in scans if s.repeats},
        "outside_features": sum(s.outside for s in scans),
        "num_videos": len(kept),
        "num_comments": sum(s.num_comments for s in kept),
    }
    linked = [s.video_id for s in kept if s.linked]
    if linked:  # what `--allow symlinks` let through
        report["symlinks_outside_release"] = {
            "allowed_by": "symlinks", "count": len(linked), "video_ids": linked[:av.SHOWN_IDS]}
    return report


def build_metadata(config: LexiconConfig, report: Mapping[str, Any], vocab: list[str],
                   stage_counts: Mapping[str, int], dims: Mapping[str, int] | None,
                   dead_letter_entries: int) -> dict[str, Any]:
    """Every metadata.json entry of a build (see README.md)."""
    return {"vocab": vocab, "stream_dims": dims, "stage_counts": dict(stage_counts), **report,
            "lexicon": config.lexicon, "min_count": config.min_count, "balance": config.balance,
            "dead_letter": {"file": DEAD_LETTER_FILE, "entries": dead_letter_entries}}


def no_usable_video(manual_dir: epath.Path, skipped: list[dict[str, str]]) -> FormatError:
    reasons = "; ".join(f"{s['file']}: {s['reason']}" for s in skipped[:5])
    return FormatError(f"{manual_dir}: no usable video ({len(skipped)} skipped: {reasons}"
                       f"{' ...' if len(skipped) > 5 else ''})")


def summary_lines(meta: Mapping[str, Any]) -> list[str]:
    """The console report of what a build skipped, dropped or found malformed (empty:
    nothing), from its metadata."""
    lines = [f"skipped {s['file']}: {s['reason']}" for s in meta["skipped"]]
    lines += [f"{f}: {n} malformed row(s) or file error(s) not read"
              for f, n in meta["problems"].items()]
    lines += [f"{f}: {n} repeated row(s) dropped" for f, n in meta["repeated_rows"].items()]
    if meta["outside_features"]:
        lines.append(f"{meta['outside_features']} comment(s) after the end of their video's "
                     "features dropped")
    linked = meta.get("symlinks_outside_release")
    if linked:
        lines.append(f"{linked['count']} video(s) read through symlinks to outside the "
                     f"manual_dir (allowed): {', '.join(linked['video_ids'])}")
    return lines


def dead_letter_lines(letters: Iterable[DeadLetter]) -> list[str]:
    """The dead-letter file's JSON lines, sorted by file, line, kind and reason."""
    import json

    return [json.dumps(d.to_json(), ensure_ascii=False)
            for d in sorted(letters, key=DeadLetter.sort_key)]


def write_dead_letter(path: epath.Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
