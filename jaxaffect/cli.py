"""`jaxaffect` command line: demo, extract, build, train, eval, predict, synthesize, convert,
config."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

GENERIC_EXAMPLES = (
    "jaxaffect demo [FAMILY] [--quick] [--full] [--seeds 0,1,2]",
    "jaxaffect build DATASET --manual_dir ~/release --data_dir ~/tfds "
    "[--file_format array_record]",
    "jaxaffect train --config configs/FAMILY/CONFIG.py:key=value --workdir runs/x "
    "[--seeds 0,1,2] [--config.training.batch_size=32]",
    "jaxaffect eval  --workdir runs/x --split test [--seeds 0,1,2]",
    "jaxaffect predict --workdir runs/x/seed_0 --features clip.npz",
    "jaxaffect extract LAYOUT --videos ~/clips --out ~/layout [--workers 2]",
    "jaxaffect predict --workdir runs/x/seed_0 --video clip.mp4 [--subtitles clip.srt]",
    "jaxaffect config show configs/FAMILY/CONFIG.py:key=value [--config.training.batch_size=32]",
)


def _epilog(families) -> str:
    lines = ["examples:", *(f"  {e}" for e in GENERIC_EXAMPLES)]
    for name, fam in families.items():
        if fam.examples:
            lines.append(f"{name} ({fam.summary}):")
            lines += [f"  {e}" for e in fam.examples]
    return "\n".join(lines) + "\n"


def _env_setup() -> None:
    # Keep tensorflow (used only to write TFRecords) off GPUs and quiet. oneDNN only speeds up
    # TF's math, which jaxaffect never uses; switching it off also removes TF's start-up lines.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    if "jax" not in sys.modules:
        n = os.environ.get("JAXAFFECT_CPU_DEVICES")
        if n:
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                       f" --xla_force_host_platform_device_count={int(n)}")


def _use_compilation_cache() -> None:
    """XLA programs are kept on disk ($JAXAFFECT_XLA_CACHE, default <data home>/xla_cache;
    "off" disables it), so reruns, seeds and sweeps of the same shapes skip compiling."""
    where = os.environ.get("JAXAFFECT_XLA_CACHE", "")
    if where.lower() == "off":
        return
    import jax

    from jaxaffect.data.build import data_home

    jax.config.update("jax_compilation_cache_dir", where or os.path.join(data_home(),
                                                                          "xla_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


def _maybe_init_distributed() -> None:
    """Joins a multi-process run when launch/ set the JAXAFFECT_* variables (never at import)."""
    coordinator = os.environ.get("JAXAFFECT_COORDINATOR")
    if not coordinator:
        return
    import jax

    if coordinator == "auto":  # TPU pods and SLURM: jax detects the cluster itself
        jax.distributed.initialize()
        return
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=int(os.environ["JAXAFFECT_NUM_PROCESSES"]),
        process_id=int(os.environ["JAXAFFECT_PROCESS_ID"]),
        local_device_ids=None)


def _seeds(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError as e:
        raise SystemExit(f"--seeds {text!r}: expected comma-separated integers") from e


def _load_config(spec: str | None, workdir: str | None, overrides: list[str]):
    from jaxaffect.config_loading import apply_overrides, load_config
    from jaxaffect.evaluate import load_run_config

    if spec:
        config = load_config(spec)
    elif workdir:
        config = load_run_config(workdir)
    else:
        raise SystemExit("--config is required (or a --workdir holding config.json)")
    apply_overrides(config, overrides)
    return config


def _indices(text: str | None, flag: str) -> list[int] | None:
    """'0-9' or '0,2,5' -> a list of ints (None when the flag is absent)."""
    if not text:
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                lo, hi = part.split("-", 1)
                out += list(range(int(lo), int(hi) + 1))
            elif part.strip():
                out.append(int(part))
    except ValueError as e:
        raise SystemExit(f"{flag} {text!r}: expected integers like 0-9 or 0,2,5") from e
    return out


def _runs(args) -> list[tuple[str, dict]]:
    """(workdir, config changes) of every run named by --splits and --seeds."""
    from jaxaffect.evaluate import seed_workdir

    splits = _indices(getattr(args, "splits", None), "--splits")
    seeds = _seeds(args.seeds)
    runs = []
    for split in splits if splits is not None else [None]:
        base = args.workdir if split is None else str(Path(args.workdir) / f"split_{split}")
        for seed in seeds if seeds else [None]:
            changes = {}
            if split is not None:
                changes["data.split_index"] = split
            if seed is not None:
                changes["seed"] = seed
            runs.append((base if seed is None else seed_workdir(base, seed), changes))
    return runs


def _apply(config, changes: dict) -> None:
    for key, value in changes.items():
        node = config
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value


def _summarize(args, results: list[dict], split: str) -> None:
    from jaxaffect.evaluate import summarize_seeds

    agg = summarize_seeds(results)
    names = {"splits": _indices(getattr(args, "splits", None), "--splits"),
             "seeds": _seeds(args.seeds)}
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    Path(args.workdir, f"runs_{split}.json").write_text(json.dumps(
        {**names, split: agg}, indent=2))
    label = ", ".join(f"{k} {v}" for k, v in names.items() if v)
    _print_seed_table(agg, split, label)


def cmd_train(args, overrides) -> int:
    from jaxaffect.train import train

    runs = _runs(args)
    if len(runs) == 1 and not runs[0][1]:
        config = _load_config(args.config, None, overrides)
        summary = train(config, args.workdir, progress=not args.no_progress,
                        overwrite=args.overwrite, allow_config_change=args.allow_config_change)
        print(json.dumps(summary, indent=2, default=float))
        return 0
    results = []
    for workdir, changes in runs:
        config = _load_config(args.config, None, overrides)
        _apply(config, changes)
        summary = train(config, workdir, progress=not args.no_progress,
                        overwrite=args.overwrite, allow_config_change=args.allow_config_change)
        results.append(summary.get("best_validation") or {})
    _summarize(args, results, "validation")
    return 0


def cmd_eval(args, overrides) -> int:
    from jaxaffect.evaluate import evaluate_run

    runs = _runs(args)
    results = []
    for workdir, changes in runs:
        config = _load_config(args.config, workdir, overrides)
        _apply(config, changes)
        result = evaluate_run(config, workdir, args.split, args.checkpoint)
        results.append(result["metrics"])
        if len(runs) == 1:
            print(json.dumps(result, indent=2))
    if len(runs) > 1:
        _summarize(args, results, args.split)
    return 0


def _print_seed_table(agg: dict, split: str, runs: str) -> None:
    print(f"{split} metrics over {runs} (mean ± std):")
    for k, v in agg.items():
        print(f"  {k:28s} {v['mean']:.4f} ± {v['std']:.4f}")


def cmd_predict(args, overrides) -> int:
    from jaxaffect.evaluate import TrainedModel

    del overrides
    path, kind = (args.video, "video") if args.video else (args.features, "features")
    inputs = {k: str(v) for k in ("subtitles", "person", "moment", "personality", "characters")
              if (v := getattr(args, k)) is not None}
    if inputs and not args.video:
        raise SystemExit(f"--{next(iter(inputs))} goes with --video")
    result = TrainedModel(args.workdir, args.checkpoint).predict_file(path, kind, inputs,
                                                                      args.attention)
    print(f"{path}: {result['prediction']}")
    for name, p in sorted(result["probabilities"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:10s} {p:.4f}")
    if result.get("scores"):
        print("  scores (sigmoid of the model's logits, not probabilities):")
        for name, p in sorted(result["scores"].items(), key=lambda kv: -kv[1]):
            print(f"  {name:20s} {p:.4f}")
    if args.attention:
        print(f"attention image: {result['figure']}" if result.get("figure") else
              "no attention image: this model's fusion has no attention")
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


def cmd_extract(args, overrides) -> int:
    from jaxaffect import family

    del overrides
    summary = family.load(family.extractors()[args.extractor].run)(args)
    for line in summary.lines():
        print(line)
    return 1 if summary.failed else 0  # the run completed; exit 1 says some videos failed


def cmd_build(args, overrides) -> int:
    from jaxaffect.data.build import build_dataset, existing_build

    del overrides
    existing = existing_build(args.name, args.data_dir, args.builder_config)
    if existing and not args.overwrite:
        print(f"skipped: {existing} already holds a complete build of {args.name} (this "
              f"version); {args.manual_dir} was not read. --overwrite rebuilds it (the old "
              "build is replaced only when the new one is complete).")
        return 0
    path = build_dataset(args.name, args.manual_dir, args.data_dir, args.file_format,
                         config=args.builder_config, overwrite=args.overwrite,
                         allow=tuple(args.allow or ()), beam_options=args.beam_options)
    print(f"{'rebuilt' if existing else 'built'} {args.name} into {path}")
    return 0


def cmd_synthesize(args, overrides) -> int:
    from jaxaffect import family

    del overrides
    writer = family.load(family.corpora()[args.corpus].writer)
    summary = writer(args.out, size=args.num_clips, seed=args.seed)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_convert(args, overrides) -> int:
    from jaxaffect import family

    del overrides
    run = family.load(family.converters()[args.converter].run)
    print(json.dumps(run(args), indent=1, default=str))
    return 0


def cmd_config_show(args, overrides) -> int:
    from jaxaffect.config_docs import show

    config = _load_config(args.config, None, overrides)
    print(show(config, " ".join([args.config, *overrides])), end="")
    return 0


def cmd_demo(args, overrides) -> int:
    from jaxaffect import family
    from jaxaffect.demo_runner import run_demo

    del overrides
    seeds = _seeds(args.seeds) or [0]
    fam = family.families()[args.family]
    workdir = args.workdir or ("demo_runs" if fam.is_default else f"demo_runs/{fam.name}")
    demo = family.load(fam.demo)()
    run_demo(demo, workdir, quick=args.quick, full=args.full, data_home=args.data_home,
             progress=not args.no_progress, seeds=seeds)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from jaxaffect import family
    from jaxaffect.data.build import available_datasets
    from jaxaffect.data.release_files import ALLOWANCES

    families = family.families()
    p = argparse.ArgumentParser(
        prog="jaxaffect", description="Multimodal affective video understanding (JAX/Flax).",
        epilog=_epilog(families), formatter_class=argparse.RawDescriptionHelpFormatter)
    from jaxaffect import __version__

    p.add_argument("--version", action="version", version=f"jaxaffect {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="synthetic corpus -> build -> train -> eval -> report",
                       description="Runs a family's demo on its synthetic corpus: writes and "
                       "builds the corpus, trains each arm for every seed, evaluates on test "
                       "and writes results.md / results.json and images.")
    demos = {n: f for n, f in families.items() if f.demo}
    d.add_argument("family", nargs="?", default=family.default_family(demos),
                   choices=sorted(demos),
                   help="; ".join(f"{n}: {f.demo_help}" for n, f in demos.items()))
    d.add_argument("--quick", action="store_true", help="a smaller corpus and fewer epochs")
    d.add_argument("--full", action="store_true",
                   help="every arm the family's demo offers, not only the headline ones")
    d.add_argument("--workdir", default=None,
                   help="where runs and results go (default demo_runs, or demo_runs/<family>)")
    d.add_argument("--data_home", default=None,
                   help="where the corpus and its build go (default $JAXAFFECT_HOME or "
                        "~/.cache/jaxaffect)")
    d.add_argument("--seeds", default="0", help="comma-separated seeds (mean ± std if several)")
    d.add_argument("--no_progress", action="store_true", help="no progress bars")
    d.set_defaults(fn=cmd_demo)

    b = sub.add_parser("build", help="materialise a dataset from its release into TFRecords",
                       description="Reads a release in the layout documented in "
                       "tfds_builders/<name>/README.md and writes a TFDS dataset. Bad input "
                       "ends with one line naming the file; nothing is silently accepted.")
    b.add_argument("name", choices=available_datasets(), help="the dataset (builder folder)")
    b.add_argument("--builder_config", default=None,
                   help="builder config (the dataset's README lists them; default: the "
                        "builder's first)")
    b.add_argument("--manual_dir", required=True, help="the release in the documented layout")
    b.add_argument("--data_dir", required=True, help="TFDS data_dir to write into")
    b.add_argument("--file_format", default="tfrecord", choices=["tfrecord", "array_record"],
                   help="record files to write (array_record: random access, global shuffle)")
    b.add_argument("--overwrite", action="store_true",
                   help="rebuild even when data_dir holds a complete build of this version "
                        "(written beside it, swapped in when complete)")
    b.add_argument("--allow", action="append", choices=sorted(ALLOWANCES), metavar="WHAT",
                   help="accept what is otherwise refused: " + "; ".join(
                       f"{k}: {v}" for k, v in sorted(ALLOWANCES.items())))
    b.add_argument("--beam_options", default=None, metavar="OPTIONS",
                   help="run the build as an Apache Beam pipeline with these options, passed "
                        "to Beam unchanged, e.g. \"--runner=DirectRunner --direct_num_workers=2 "
                        "--direct_running_mode=multi_processing\" (or Dataflow/Flink/Spark "
                        "options); needs apache-beam (extra `beam`) and a builder with a Beam "
                        "pipeline. Default: in process")
    b.set_defaults(fn=cmd_build)

    for name, fn, helptext in (("train", cmd_train, "train (or resume) a run"),
                               ("eval", cmd_eval, "evaluate a run's best checkpoint")):
        t = sub.add_parser(name, help=helptext,
                           description=helptext + "; extra --config.key=value flags override "
                           "config fields")
        t.add_argument("--config", required=(name == "train"),
                       help="config file and argument: configs/<family>/<name>.py:key=value,..."
                       + ("" if name == "train" else " (default: <workdir>/config.json)"))
        t.add_argument("--workdir", required=True,
                       help="the run's folder (config.json, checkpoints, metrics, images)")
        t.add_argument("--seeds", default=None,
                       help="comma-separated seeds; runs go to <workdir>/seed_<k>, "
                            "mean ± std is reported")
        t.add_argument("--splits", default=None,
                       help="data.split_index values, e.g. 0-9 (a benchmark's ten splits); "
                            "runs go to <workdir>/split_<k>[/seed_<s>], mean ± std is "
                            "reported")
        if name == "train":
            t.add_argument("--no_progress", action="store_true", help="no progress bar")
            t.add_argument("--overwrite", action="store_true",
                           help="delete the run already in --workdir and start fresh")
            t.add_argument("--allow_config_change", action="store_true",
                           help="resume although the number of epochs or the logging / "
                                "checkpoint intervals changed")
        else:
            t.add_argument("--split", default="test", choices=["test", "validation", "train"],
                           help="the split to evaluate")
            t.add_argument("--checkpoint", default="best", choices=["best", "latest"],
                           help="best (by the validation metric) or latest checkpoint")
        t.set_defaults(fn=fn)

    pr = sub.add_parser("predict", help="predict one clip (feature file or video) with a "
                                        "trained run",
                        description="Predicts one clip with a trained run and prints the class "
                        "probabilities (or regression values): a feature file for the "
                        "tasks that read features, a video file for tasks that read raw media.")
    pr.add_argument("--workdir", required=True,
                    help="a training run's folder (with --seeds runs: <workdir>/seed_<k>)")
    source = pr.add_mutually_exclusive_group(required=True)
    source.add_argument("--features", help="a per-clip .npz in the builder's layout")
    source.add_argument("--video", help="a video file (mp4, webm, mkv, ...): decoded and "
                                        "sampled as at evaluation for a task that reads raw "
                                        "media; for a task that reads features, extracted "
                                        "first as its dataset was (`jaxaffect extract`)")
    pr.add_argument("--subtitles", default=None,
                    help="the video's subtitle file (.srt, .vtt, .ass) for extractors that "
                         "read text")
    pr.add_argument("--person", default=None,
                    help="the target person (a character name) for tasks that predict one "
                         "person's emotion")
    pr.add_argument("--moment", type=float, default=None,
                    help="the moment (seconds into the video) to predict, for tasks that "
                         "predict at a moment")
    pr.add_argument("--characters", default=None, metavar="A,B[,...]",
                    help="the people of the clip, comma-separated, for tasks that predict "
                         "interactions between people (the first two are the pair for "
                         "models given the pair)")
    pr.add_argument("--personality", default=None,
                    help="the personality file the run's dataset was extracted with, for "
                         "extractors that take one")
    pr.add_argument("--checkpoint", default="best", choices=["best", "latest"],
                    help="best (by the validation metric) or latest checkpoint")
    pr.add_argument("--attention", default=None, metavar="PNG",
                    help="also write the model's attention over the clip's modalities and "
                         "steps to this image (models with attention, e.g. SMTA)")
    pr.add_argument("--json", action="store_true", help="also print the result as JSON")
    pr.set_defaults(fn=cmd_predict)

    sy = sub.add_parser("synthesize", help="write a synthetic corpus in a release layout",
                        description="Writes a documented synthetic corpus in a release layout "
                        "(see docs/synthetic_*.md); it is not real data.")
    corpora = family.corpora(families)
    with_corpora = {n: f for n, f in families.items() if f.corpora}
    default_corpus = (next(iter(with_corpora[family.default_family(with_corpora)].corpora))
                      if with_corpora else None)
    sy.add_argument("corpus", nargs="?", default=default_corpus, choices=sorted(corpora),
                    help="; ".join(f"{n}: {c.help}" for n, c in corpora.items()))
    sy.add_argument("--out", required=True, help="an empty or new folder")
    sy.add_argument("--num_clips", "--num_videos", dest="num_clips", type=int, default=None,
                    help="size of the corpus (both names set it): " + "; ".join(
                        f"{n}: {c.size_help}" for n, c in corpora.items() if c.size_help))
    sy.add_argument("--seed", type=int, default=0, help="the corpus seed (same seed, same bytes)")
    sy.set_defaults(fn=cmd_synthesize)

    cv = sub.add_parser("convert", help="import released checkpoints of other code bases",
                        description="Maps another code base's released weights onto our "
                        "parameters (torch is optional; only tensors and plain containers are "
                        "unpickled).")
    conv = cv.add_subparsers(dest="converter", required=True, metavar="{" + ",".join(
        sorted(family.converters(families))) + "}", help="what to convert")
    for name, converter in sorted(family.converters(families).items()):
        c = conv.add_parser(name, help=converter.help, description=converter.help)
        converter.add_arguments(c)
    cv.set_defaults(fn=cmd_convert)

    ex = sub.add_parser("extract", help="videos -> features in a builder's manual_dir layout",
                        description="Extracts features from raw videos into the manual_dir "
                        "layout of a builder (then `jaxaffect build`). Parallel over videos, "
                        "resumable (finished videos are kept), failures listed in "
                        "<out>/extract_failures.tsv; extraction.json records the settings.")
    exs = ex.add_subparsers(dest="extractor", required=True, metavar="{" + ",".join(
        sorted(family.extractors(families))) + "}", help="the layout to write")
    for name, extractor in sorted(family.extractors(families).items()):
        e = exs.add_parser(name, help=extractor.help, description=extractor.help)
        e.add_argument("--videos", required=True, help="folder of video files")
        e.add_argument("--out", required=True,
                       help="the layout folder to write (new, or an earlier run's to resume)")
        e.add_argument("--workers", type=int, default=1,
                       help="worker processes, one video each at a time (default 1)")
        e.add_argument("--no_progress", action="store_true", help="no progress bar")
        extractor.add_arguments(e)
    ex.set_defaults(fn=cmd_extract)

    cf = sub.add_parser("config", help="inspect configs: every field, its value and meaning",
                        description="Inspects config files. The tables docs/configs_<family>.md "
                        "list every config file's fields with their defaults.")
    cfs = cf.add_subparsers(dest="config_command", required=True, metavar="{show}",
                            help="what to do with the config")
    cs = cfs.add_parser("show", help="print the resolved config, one field per line",
                        description="Prints the resolved config (after the config argument "
                        "and any --config.a.b=value overrides), one field per line: "
                        "`dotted.name = value  # description`, grouped by section.")
    cs.add_argument("config", help="config file and argument: configs/<family>/<name>.py:"
                    "key=value,... (or <family>/<name>.py); --config.a.b=value flags "
                    "override fields")
    cs.set_defaults(fn=cmd_config_show)
    return p


def main(argv: list[str] | None = None) -> int:
    _env_setup()
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    bad = [u for u in unknown if not u.startswith("--config.")]
    if bad or (unknown and args.command not in ("train", "eval", "config")):
        parser.error(f"unrecognised arguments: {' '.join(bad or unknown)}")
    from jaxaffect.config_loading import ConfigError
    from jaxaffect.errors import FormatError
    from jaxaffect.train import NonFiniteLossError

    if args.command in ("train", "eval"):
        _maybe_init_distributed()
    if args.command in ("train", "eval", "demo", "predict"):
        _use_compilation_cache()
    errors = (ConfigError, FormatError, NonFiniteLossError, FileNotFoundError)
    try:
        return args.fn(args, unknown)
    except errors as e:
        print(f"jaxaffect {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
