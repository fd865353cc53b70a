"""Where a compiled step spends its time, by kind of operation: matrix products against the rest.

`xla_op_seconds` runs a compiled function under ``jax.profiler`` and sums the duration of every
operation the trace records (each XLA thunk: fusions, dots, copies), per step, sorted into kinds
by looking each operation up in the compiled program's HLO text:

* ``matrix products``: a dot or a convolution, or a fusion whose computation contains one
  (XLA's CPU backend fuses elementwise work into some of its dot fusions);
* ``layout copies``: copies and transposes, and fusions of them;
* ``broadcasts``: broadcasts written out to memory (not fused into their consumer);
* ``other``: everything else (elementwise fusions, reductions, softmax, normalisation).

`torch_op_seconds` does the same for a PyTorch callable with ``torch.profiler`` (self CPU time
of each aten operator). Both return seconds per step; on several threads the op times of
concurrent operations add up, so the sum can differ from the wall time of a step.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import re
import tempfile
from collections.abc import Callable
from typing import Any

KINDS = ("matrix products", "layout copies", "broadcasts", "other")
# trace events that are not operations: the executor, Python-side dispatch, the profiler
_NOT_OPS = ("ThunkExecutor", "$", "PjitFunction", "SlinkyThreadPool", "end:", "CommonPjRt",
            "PjRt", "Thunk")
_TORCH_MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul",
                 "aten::mkldnn_convolution", "aten::convolution_backward",
                 "aten::_convolution", "aten::linear")
_TORCH_COPY = ("aten::copy_", "aten::cat", "aten::clone", "aten::contiguous",
               "aten::index", "aten::_index_put_impl_", "aten::roll", "aten::permute")
_TORCH_BROADCAST = ("aten::fill_", "aten::expand", "aten::zero_")


def hlo_instructions(hlo_text: str) -> dict[str, tuple[str, str]]:
    """Instruction name -> (opcode, body of the computation it calls, or "")."""
    bodies = {m.group(1): m.group(2) for m in re.finditer(
        r"^%?([\w.\-]+) \([^\n]*\{\n(.*?)\n\}", hlo_text, re.M | re.S)}
    out = {}
    for m in re.finditer(r"^\s+(?:ROOT )?%?([\w.\-]+) = \S+ ([\w\-]+)\((.*)$", hlo_text, re.M):
        called = re.search(r"calls=%([\w.\-]+)", m.group(3))
        out[m.group(1)] = (m.group(2), bodies.get(called.group(1), "") if called else "")
    return out


def xla_kind(name: str, instructions: dict[str, tuple[str, str]]) -> str:
    """The kind (one of `KINDS`) of the HLO instruction `name`."""
    opcode, body = instructions.get(name, ("", ""))
    base = re.sub(r"\.\d+$", "", name)
    if opcode in ("dot", "convolution") or " dot(" in body or " convolution(" in body:
        return "matrix products"
    if opcode in ("copy", "transpose") or base.startswith(("copy", "transpose")) or \
            "_copy_" in base or base.endswith(("_copy", "_transpose")):
        return "layout copies"
    if opcode == "broadcast" or base == "wrapped_broadcast":
        return "broadcasts"
    return "other"


def xla_op_seconds(compiled: Any, args: tuple, steps: int = 2) -> dict[str, float]:
    """Seconds per step by kind for `steps` calls of the compiled function `compiled(*args)`."""
    import jax

    instructions = hlo_instructions(compiled.as_text())
    with tempfile.TemporaryDirectory() as folder:
        jax.profiler.start_trace(folder, create_perfetto_trace=True)
        for _ in range(steps):
            jax.block_until_ready(compiled(*args))
        jax.profiler.stop_trace()
        trace = sorted(glob.glob(f"{folder}/**/*.trace.json.gz", recursive=True))[-1]
        with gzip.open(trace) as f:
            events = json.load(f)["traceEvents"]
    seconds: dict[str, float] = collections.Counter({k: 0.0 for k in KINDS})
    for e in events:
        if e.get("ph") == "X" and not e["name"].startswith(_NOT_OPS):
            seconds[xla_kind(e["name"], instructions)] += e["dur"] / 1e6 / steps
    return dict(seconds)


def torch_kind(name: str) -> str:
    """The kind (one of `KINDS`) of an aten operator."""
    if name in _TORCH_MATMUL:
        return "matrix products"
    if name in _TORCH_COPY:
        return "layout copies"
    if name in _TORCH_BROADCAST:
        return "broadcasts"
    return "other"


def torch_op_seconds(step: Callable[[], Any], steps: int = 2) -> dict[str, float]:
    """Seconds per step by kind (self CPU time of aten operators) for `steps` calls."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    seconds: dict[str, float] = collections.Counter({k: 0.0 for k in KINDS})
    for item in prof.key_averages():
        if item.key.startswith("aten::"):
            seconds[torch_kind(item.key)] += item.self_cpu_time_total / 1e6 / steps
    return dict(seconds)
