"""Pieces every README benchmark block shares: the provenance stamp and the FLOP columns."""

from __future__ import annotations


def stamp(runs: list[dict]) -> str:
    r = runs[-1]
    memory = f", {r['memory_gib']} GiB" if r.get("memory_gib") else ""
    return (f"Commit `{r['commit']}`, {r['cpu']} ({r['cores']} cores{memory}), jax {r['jax']}"
            + (f", torch {r['torch']}" if r.get("torch") else "")
            + f"; rendered from `benchmarks/results/{r['benchmark']}.jsonl` by "
            "`python benchmarks/report.py`.")


def flops_per_step(r: dict) -> float:
    """FLOPs per step as `jaxaffect.perf.count_flops` counts them (loops by trip count); XLA's
    count for lines written before that was reported."""
    return r.get("flops_per_step", r["xla_flops_per_step"])


def flops_source(runs: list[dict]) -> str:
    """How the GFLOP columns were counted (a sentence)."""
    if all("flops_per_step" in r for r in runs):
        return ("GFLOP/step by `jaxaffect.perf.count_flops`, every loop body counted once per "
                "iteration; the share is of a float32 matmul's rate measured in the same run")
    return "GFLOP/step from XLA's cost analysis: these runs predate the loop-aware count"


def rate_and_share(gflop_per_s: float | None, r: dict) -> str:
    if gflop_per_s is None:
        return "-"
    if r.get("peak_fraction") is None:
        return f"{gflop_per_s:.0f}"
    return (f"{gflop_per_s:.0f} ({r['peak_fraction']:.0%} of "
            f"{r['matmul_peak_gflop_per_s']:.0f})")


def non_default_options(arguments: dict, defaults: dict, sep: str = " ") -> str:
    """`` --name<sep>value`` for each option of `defaults` a run set to another value (an
    option a run did not record counts as its default)."""
    def shown(v) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    return "".join(f" --{k}{sep}{shown(arguments[k])}" for k, default in defaults.items()
                   if arguments.get(k, default) != default)
