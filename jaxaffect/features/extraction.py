"""Running an extractor over many videos: parallel, resumable, atomic, with a failure list.

A family's extractor is a function ``extract(job, settings, stages) -> Extracted``, named as
"module:function" so that worker processes can import it. The runner here knows nothing about
any family:

* every job writes one output file under the output folder, first to a hidden ``.partial``
  name, then renamed: a file under its final name is always complete;
* a job whose output exists is never redone; an interrupted job left only a partial file,
  which the next run deletes and redoes from scratch;
* a failing job (broken, truncated or unsupported media, a bad subtitle file, ...) never stops
  the run: its (file, stage, reason) goes to ``extract_failures.tsv`` beside the outputs and
  is summarised at the end; nothing is dropped silently;
* what a job noticed without failing (no audio stream, no subtitle file: those streams are
  absent, masked out) goes to ``extract_notes.tsv`` (file, stage, note), kept across resumed
  runs, and is counted in the summary;
* ``extraction.json`` records the extractor, its settings and the feature streams; a second
  run into the same folder with other settings is refused (features of two extractors never
  mix in one layout), and builders copy the record into the dataset's metadata so `predict
  --video` can run the same extractor;
* outputs do not depend on the number of workers or the order jobs finish in.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxaffect.data.release_files import write_npz
from jaxaffect.errors import FormatError

RECORD = "extraction.json"
FAILURES = "extract_failures.tsv"
NOTES = "extract_notes.tsv"
PARTIAL = ".partial"
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".mpg", ".mpeg",
                    ".ts", ".wmv", ".3gp")


@dataclasses.dataclass(frozen=True)
class Job:
    """One video to extract. `output` is the output file's path relative to the output folder;
    `sidecars` are other inputs of the video by kind (e.g. {"subtitles": path})."""

    video: str
    output: str
    sidecars: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Extracted:
    """What an extractor returns: the arrays of the output file, the video's duration, and
    (stage, note) pairs for what is absent without being an error (e.g. no audio stream)."""

    arrays: dict[str, np.ndarray]
    seconds: float
    notes: list[tuple[str, str]] = dataclasses.field(default_factory=list)


class StageError(Exception):
    """A job failed in one stage; `reason` is one line."""

    def __init__(self, stage: str, reason: str):
        super().__init__(f"{stage}: {reason}")
        self.stage, self.reason = stage, reason


@contextlib.contextmanager
def one_video(video: str) -> Iterator[None]:
    """For one video outside a run (`predict --video`): a failed stage becomes a FormatError
    "<video>: <stage>: <reason>"."""
    try:
        yield
    except StageError as e:
        raise FormatError(f"{video}: {e.stage}: {e.reason}") from None


class Stages:
    """Times the stages of one job and turns any error inside a stage into a StageError."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        except StageError:
            raise
        except Exception as e:  # noqa: BLE001 - every failure becomes a named failure
            raise StageError(name, _one_line(e)) from e
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if isinstance(error, FormatError) else f"{type(error).__name__}: {text}"


@dataclasses.dataclass
class Outcome:
    """One job's result as the runner sees it."""

    job: Job
    ok: bool
    stage: str = ""
    reason: str = ""
    seconds: float = 0.0
    wall: float = 0.0
    stage_seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    notes: list[tuple[str, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Summary:
    extracted: int
    skipped: int
    failed: list[Outcome]
    video_seconds: float
    wall_seconds: float
    stage_seconds: dict[str, float]
    out_dir: str
    noted: int = 0

    def lines(self) -> list[str]:
        rate = self.video_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0
        lines = [f"extracted {self.extracted} video(s) into {self.out_dir} "
                 f"({self.video_seconds:.1f} s of video in {self.wall_seconds:.1f} s, "
                 f"{rate:.2f} s of video per s); "
                 f"{self.skipped} already done; {len(self.failed)} failed"]
        if self.noted:
            lines.append(f"{self.noted} extracted video(s) have notes (an absent stream, "
                         f"unnamed faces, ...): listed in {os.path.join(self.out_dir, NOTES)}")
        if self.failed:
            lines.append(f"failures (also in {os.path.join(self.out_dir, FAILURES)}):")
            lines += [f"  {o.job.video}: {o.stage}: {o.reason}" for o in self.failed]
        return lines


def add_subtitle_and_decoding_arguments(parser: Any, defaults: Mapping[str, Any]) -> None:
    """--subtitle_encoding, --max_fps and --short_side of an extractor (defaults from its
    settings' "max_fps" and "short_side")."""
    parser.add_argument("--subtitle_encoding", default=None,
                        help="text encoding of the subtitle files (default: UTF-8, or what "
                             "their byte-order mark says)")
    parser.add_argument("--max_fps", type=float, default=defaults["max_fps"],
                        help="frames decoded per second at most (default %(default)s)")
    parser.add_argument("--short_side", type=int, default=defaults["short_side"],
                        help="frames resized to this short side (default %(default)s)")


def find_videos(folder: str | os.PathLike) -> list[tuple[str, Path]]:
    """(id, path) of every file with a video extension under `folder`, sorted by id; the id is
    the path relative to `folder` without extension ('/'-separated). Symlinks are not followed
    out of the folder. Two files with one id (clip.mp4 and clip.webm) are refused."""
    root = Path(folder)
    if not root.is_dir():
        raise FormatError(f"{folder}: not a folder")
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.startswith(".") or path.suffix.lower() not in VIDEO_EXTENSIONS:
                continue
            vid = path.relative_to(root).with_suffix("").as_posix()
            if vid in found:
                raise FormatError(f"{path}: another video has the same name ({found[vid].name})"
                                  "; ids are file names without extension")
            found[vid] = path
    return sorted(found.items())


def check_record(out_dir: str | os.PathLike, record: Mapping[str, Any]) -> None:
    """Writes `record` as out_dir/extraction.json, or checks that the one there is equal."""
    path = Path(out_dir) / RECORD
    text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise FormatError(f"{path}: unreadable ({_one_line(e)})") from e
        if old != json.loads(text):
            diff = sorted(k for k in set(old) | set(record) if old.get(k) != record.get(k))
            raise FormatError(f"{path}: {out_dir} was extracted with other settings (differing "
                              f"{diff}); use a new --out folder, or the same settings")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(RECORD + PARTIAL)
    tmp.write_text(text)
    os.replace(tmp, path)


def check_same_extraction(video: str, record: Mapping[str, Any], names: Sequence[str],
                          made_here: Mapping[str, Any]) -> None:
    """Refuses (FormatError naming `video`) a dataset's extraction record that another
    extractor wrote, or that differs from the record this installation makes with the same
    settings (`made_here`): its features could not be reproduced for a new video."""
    if record.get("extractor") not in names:
        raise FormatError(f"{video}: the run's features came from extractor "
                          f"{record.get('extractor')!r}, not {' or '.join(map(repr, names))}")
    if dict(record) != dict(made_here):
        raise FormatError(f"{video}: the run's dataset was extracted with other streams "
                          f"({record.get('streams')}) than this installation makes "
                          f"({made_here.get('streams')})")


def read_record(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The extraction.json of a layout folder, or None when it has none."""
    path = Path(folder) / RECORD
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        raise FormatError(f"{path}: not valid JSON ({_one_line(e)})") from e


def _partial_name(final: Path) -> Path:
    return final.with_name(f".{final.name}{PARTIAL}")


def write_output(final: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Writes a .npz under a partial name, then renames it (atomic on one file system)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial_name(final)
    write_npz(tmp, arrays)
    os.replace(tmp, final)


def copy_if_new(src: Path, dst: Path) -> None:
    """Copies src to dst atomically (e.g. a release's list files into a layout); an existing
    equal dst is kept, a different one refused: nothing already written is lost."""
    if not src.is_file():
        raise FormatError(f"{src}: not a file")
    if dst.exists():
        if dst.read_bytes() != src.read_bytes():
            raise FormatError(f"{dst}: exists and differs from {src}; not overwritten")
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial_name(dst)
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def write_files_into(out_dir: Path, write: Callable[[Path], None],
                     scratch: str = ".release_tmp") -> list[Path]:
    """Calls `write(folder)` on an empty scratch folder inside `out_dir`, then moves every file
    it wrote to the same place under `out_dir` (each file replaced whole, on one file system);
    returns the moved files' destinations, sorted. The scratch name must not end in
    PARTIAL (those files are removed by the runner)."""
    tmp = out_dir / scratch
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    write(tmp)
    moved = []
    for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
        dst = out_dir / path.relative_to(tmp)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dst)
        moved.append(dst)
    shutil.rmtree(tmp)
    return moved


def _load(ref: str) -> Callable[..., Extracted]:
    from jaxaffect.family import load

    return load(ref)


def run_job(ref: str, job: Job, settings: Mapping[str, Any], out_dir: str) -> Outcome:
    """Runs one job (in a worker or in-process) and writes its output."""
    start = time.perf_counter()
    stages = Stages()
    try:
        result = _load(ref)(job, settings, stages)
        with stages("write"):
            write_output(Path(out_dir) / job.output, result.arrays)
    except StageError as e:
        return Outcome(job, False, e.stage, e.reason, wall=time.perf_counter() - start,
                       stage_seconds=stages.seconds)
    except Exception as e:  # noqa: BLE001 - a bug in one job must not stop the run
        return Outcome(job, False, "extract", _one_line(e), wall=time.perf_counter() - start,
                       stage_seconds=stages.seconds)
    return Outcome(job, True, seconds=result.seconds, wall=time.perf_counter() - start,
                   stage_seconds=stages.seconds, notes=list(result.notes))


def _worker_init() -> None:
    """Each worker process owns about one core: single-threaded decoding, BLAS/OpenMP and
    OpenCV (threads of several workers would only contend; outputs do not change)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    from threadpoolctl import threadpool_limits

    from jaxaffect.features import media

    media.single_threaded_decoding()
    threadpool_limits(limits=1)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass


def _remove_partials(out_dir: Path) -> None:
    for path in out_dir.rglob(f".*{PARTIAL}"):
        path.unlink()


def _write_failures(out_dir: Path, failed: Sequence[Outcome]) -> None:
    path = out_dir / FAILURES
    if not failed:
        path.unlink(missing_ok=True)
        return
    rows = ["file\tstage\treason"]
    rows += ["\t".join(" ".join(str(x).split()) for x in (o.job.video, o.stage, o.reason))
             for o in sorted(failed, key=lambda o: o.job.output)]
    tmp = path.with_name(FAILURES + PARTIAL)
    tmp.write_text("\n".join(rows) + "\n")
    os.replace(tmp, path)


def _write_notes(out_dir: Path, outcomes: Sequence[Outcome]) -> int:
    """Merges this run's notes into extract_notes.tsv (rows of videos run now are replaced;
    those of videos done earlier are kept). Returns the number of videos noted now."""
    path = out_dir / NOTES
    ran = {o.job.video for o in outcomes}
    rows = []
    if path.is_file():
        rows = [r for r in path.read_text().splitlines()[1:] if r.split("\t")[0] not in ran]
    rows += ["\t".join(" ".join(str(x).split()) for x in (o.job.video, stage, note))
             for o in outcomes if o.ok for stage, note in o.notes]
    if not rows:
        path.unlink(missing_ok=True)
        return 0
    tmp = path.with_name(NOTES + PARTIAL)
    tmp.write_text("\n".join(["file\tstage\tnote", *sorted(rows)]) + "\n")
    os.replace(tmp, path)
    return sum(1 for o in outcomes if o.ok and o.notes)


def run_extraction(jobs: Sequence[Job], extractor: str, settings: Mapping[str, Any],
                   out_dir: str | os.PathLike, *, record: Mapping[str, Any],
                   workers: int = 1, progress: bool = True) -> Summary:
    """Extracts every job not yet done into `out_dir` (see the module docstring)."""
    out = Path(out_dir)
    outputs = [j.output for j in jobs]
    if len(set(outputs)) != len(outputs):
        raise FormatError(f"{out_dir}: two jobs write the same output file")
    check_record(out, record)
    _remove_partials(out)
    todo = [j for j in jobs if not (out / j.output).is_file()]
    skipped = len(jobs) - len(todo)
    start = time.perf_counter()
    outcomes: list[Outcome] = []
    bar = _progress(len(todo), progress)
    try:
        for outcome in _outcomes(todo, extractor, settings, os.fspath(out), workers):
            outcomes.append(outcome)
            bar.update(1)
            done = sum(o.seconds for o in outcomes)
            bar.set_postfix_str(f"{done / max(time.perf_counter() - start, 1e-9):.2f} s video/s"
                                f", {sum(not o.ok for o in outcomes)} failed")
    finally:
        bar.close()
    failed = [o for o in outcomes if not o.ok]
    _write_failures(out, failed)
    noted = _write_notes(out, outcomes)
    stage_seconds: dict[str, float] = {}
    for o in outcomes:
        for k, v in o.stage_seconds.items():
            stage_seconds[k] = stage_seconds.get(k, 0.0) + v
    return Summary(extracted=sum(o.ok for o in outcomes), skipped=skipped, failed=failed,
                   video_seconds=sum(o.seconds for o in outcomes),
                   wall_seconds=time.perf_counter() - start, stage_seconds=stage_seconds,
                   out_dir=os.fspath(out), noted=noted)


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="video", disable=not enabled, dynamic_ncols=True,
                desc="extract")


def _outcomes(jobs: Sequence[Job], ref: str, settings: Mapping[str, Any], out_dir: str,
              workers: int) -> Iterator[Outcome]:
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield run_job(ref, job, settings, out_dir)
        return
    pending = list(jobs)
    while pending:
        # A worker that dies (e.g. a crash inside a decoder) breaks the pool: its jobs fail
        # with a named reason and a fresh pool takes the rest.
        context = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(workers, mp_context=context,
                                    initializer=_worker_init) as pool:
            futures = {pool.submit(run_job, ref, j, dict(settings), out_dir): j
                       for j in pending}
            pending = []
            broken = False
            for future in cf.as_completed(futures):
                job = futures[future]
                try:
                    yield future.result()
                except cf.process.BrokenProcessPool:
                    if not broken:
                        broken = True
                        yield Outcome(job, False, "worker", "the worker process died while "
                                      "extracting this video (or one beside it)")
                    else:
                        pending.append(job)
            pending.sort(key=lambda j: j.output)
