"""FLOPs of a traced step, XLA's own count, and the measured matmul peak of a device.

XLA's ``compiled.cost_analysis()`` counts the body of a ``lax.scan`` or while loop once, so a
model scanned over its layers (``nn.scan``) is undercounted by about the number of layers.
:func:`count_flops` walks the jaxpr instead and multiplies loop bodies by their trip count.

Conventions of :func:`count_flops` (close to XLA's, see ``tests/test_perf.py``):

* ``dot_general``: ``2 * output elements * contracted size`` (= 2·batch·M·N·K);
  ``conv_general_dilated``: ``2 * output elements * kernel taps * input channels per group``,
  every tap counted (XLA skips taps that fall in the padding, so it counts a padded conv a few
  percent lower). Both go to ``matmul``.
* Element-wise ops count 1 per output element (transcendentals too; XLA counts those apart,
  not as flops), reductions and cumulative ops 1 per input element, scatter-add (and -mul,
  -min, -max) 1 per update element, windowed reductions (pooling) 1 per window element of each
  output; ops that only move, reshape, gather or convert data count 0. These go to ``other``;
  they are approximate (XLA expands some ops, e.g. the PRNG, into many, and simplifies others
  away).
* ``scan`` bodies count ``length`` times; ``while`` bodies count their trip count where it is
  static (a counter ``i`` starting at a literal, ``i + step`` in the body and ``i < bound``
  with a literal bound as the whole condition, as ``fori_loop`` with traced-but-constant
  bounds gives); other while loops count once and are listed in ``FlopCount.dynamic_loops``
  (so ``total`` is then a lower bound), or raise with ``strict=True``.
* ``cond``/``switch``: the most expensive branch (an upper bound for the branch taken).
* Calls (``jit``, ``custom_jvp_call``, ``custom_vjp_call``, ``checkpoint``/``remat``, ...)
  are entered. The count is of the program as traced: trace the whole train step (with its
  ``value_and_grad``) to count the backward pass, and rematerialised forward passes count
  again, as they run again. A ``shard_map`` body counts once: one device's share.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend import core as jcore

# ops that move, reshape, index or reinterpret data without arithmetic
_FREE = frozenset({
    "reshape", "broadcast_in_dim", "transpose", "squeeze", "expand_dims", "slice",
    "dynamic_slice", "dynamic_update_slice", "gather", "concatenate", "pad", "rev", "iota",
    "copy", "copy_p", "convert_element_type", "bitcast_convert_type", "device_put",
    "sharding_constraint", "mesh_cast", "reshard", "random_seed", "random_wrap",
    "random_unwrap", "random_key_data", "stop_gradient", "optimization_barrier",
    "split", "pvary", "axis_index", "empty",
})
_MATMUL = frozenset({"dot_general", "conv_general_dilated"})
_SUBJAXPR_TYPES = (jcore.Jaxpr, jcore.ClosedJaxpr)


@dataclasses.dataclass(frozen=True)
class FlopCount:
    """FLOPs of one call: ``matmul`` (dot_general + conv), ``other`` (element-wise and
    reductions), ``total`` = both; ``by_primitive`` per primitive name; ``dynamic_loops``:
    while loops whose trip count is not static (each counted once)."""

    matmul: float
    other: float
    by_primitive: dict[str, float]
    dynamic_loops: int = 0

    @property
    def total(self) -> float:
        return self.matmul + self.other

    @property
    def exact_loops(self) -> bool:
        """True when every loop's trip count was read statically."""
        return self.dynamic_loops == 0


def _size(var: Any) -> int:
    aval = var.aval
    return int(math.prod(getattr(aval, "shape", ())))


def _dot_flops(eqn: Any) -> float:
    (lhs_contract, _), _ = eqn.params["dimension_numbers"]
    lhs = eqn.invars[0].aval.shape
    k = math.prod(lhs[d] for d in lhs_contract)
    return 2.0 * _size(eqn.outvars[0]) * k


def _conv_flops(eqn: Any) -> float:
    rhs = eqn.invars[1].aval.shape
    out_feature_dim = eqn.params["dimension_numbers"].rhs_spec[0]
    # per output element: kernel taps x input channels per group
    per_output = math.prod(rhs) // rhs[out_feature_dim]
    return 2.0 * _size(eqn.outvars[0]) * per_output


def _is_reduction(name: str) -> bool:
    return (name.startswith(("reduce_", "cum", "arg")) or name in ("reduce", "sort",
                                                                    "reduce_precision"))


def _subjaxprs(params: dict[str, Any]) -> list[Any]:
    found = []
    for v in params.values():
        items = v if isinstance(v, (tuple, list)) else (v,)
        found += [x for x in items if isinstance(x, _SUBJAXPR_TYPES)]
    return found


def _open(j: Any) -> Any:
    return j.jaxpr if isinstance(j, jcore.ClosedJaxpr) else j


def _literal(v: Any) -> Any:
    return v.val if isinstance(v, jcore.Literal) else None


def _while_trip_count(eqn: Any) -> int | None:
    """The trip count of a counted while loop (see the module docstring), else None."""
    p = eqn.params
    cond, body = _open(p["cond_jaxpr"]), _open(p["body_jaxpr"])
    nc, nb = p["cond_nconsts"], p["body_nconsts"]
    init = eqn.invars[nc + nb:]
    if len(cond.eqns) != 1 or cond.eqns[0].primitive.name != "lt":
        return None
    carries = list(cond.invars[nc:])
    lhs, rhs = cond.eqns[0].invars
    if lhs not in carries:
        return None
    i = carries.index(lhs)
    start = _literal(init[i])
    if rhs in carries:
        j = carries.index(rhs)
        if body.outvars[j] is not body.invars[nb + j]:
            return None
        bound = _literal(init[j])
    else:
        bound = _literal(rhs)
    step = None
    for e in body.eqns:
        if e.outvars[0] is body.outvars[i] and e.primitive.name == "add":
            a, b = e.invars
            step = _literal(b) if a is body.invars[nb + i] else (
                _literal(a) if b is body.invars[nb + i] else None)
    if start is None or bound is None or step is None or int(step) <= 0:
        return None
    return max(0, -(-(int(bound) - int(start)) // int(step)))


class _Counter:
    def __init__(self, strict: bool):
        self.strict = strict
        self.by_primitive: dict[str, float] = {}
        self.dynamic_loops = 0

    def jaxpr(self, j: Any, times: float) -> None:
        for eqn in _open(j).eqns:
            self.eqn(eqn, times)

    def add(self, name: str, flops: float) -> None:
        if flops:
            self.by_primitive[name] = self.by_primitive.get(name, 0.0) + flops

    def eqn(self, eqn: Any, times: float) -> None:
        name, p = eqn.primitive.name, eqn.params
        if name == "scan":
            self.jaxpr(p["jaxpr"], times * p["length"])
        elif name == "while":
            trips = _while_trip_count(eqn)
            if trips is None:
                if self.strict:
                    raise ValueError("a while loop's trip count is not static; count_flops "
                                     "cannot count it (strict=True)")
                self.dynamic_loops += 1
                trips = 1
            self.jaxpr(p["cond_jaxpr"], times * (trips + 1))
            self.jaxpr(p["body_jaxpr"], times * trips)
        elif name == "cond":
            counts = []
            for branch in p["branches"]:
                sub = _Counter(self.strict)
                sub.jaxpr(branch, times)
                counts.append(sub)
            worst = max(counts, key=lambda c: sum(c.by_primitive.values()))
            for k, v in worst.by_primitive.items():
                self.add(k, v)
            self.dynamic_loops += worst.dynamic_loops
        elif name.startswith("scatter"):  # one combine per update element; a plain scatter 0
            self.add(name, times * _size(eqn.invars[2]) * (name != "scatter"))
        elif name.startswith("reduce_window"):  # one per window element of every output
            window = math.prod(p.get("window_dimensions", ()))
            self.add(name, times * sum(_size(v) for v in eqn.outvars) * window)
        elif name in ("reduce", "select_and_scatter", "select_and_scatter_add",
                      "select_and_gather_add"):  # their jaxprs combine two elements
            self.add(name, times * _size(eqn.invars[0]))
        elif subs := _subjaxprs(p):
            for s in subs:
                self.jaxpr(s, times)
        elif name == "dot_general":
            self.add(name, times * _dot_flops(eqn))
        elif name == "conv_general_dilated":
            self.add(name, times * _conv_flops(eqn))
        elif name in _FREE:
            pass
        elif _is_reduction(name):
            self.add(name, times * sum(_size(v) for v in eqn.invars[:1]))
        else:  # element-wise (and anything else): one per output element
            self.add(name, times * sum(_size(v) for v in eqn.outvars))


def count_flops(fn: Callable[..., Any], *args: Any, strict: bool = False,
                **kwargs: Any) -> FlopCount:
    """FLOPs of one call ``fn(*args, **kwargs)``, loops counted by trip count (module
    docstring); ``fn`` is traced abstractly, nothing runs. ``strict``: raise on a while loop
    whose trip count is not static instead of counting its body once."""
    closed = jax.make_jaxpr(fn)(*args, **kwargs)
    counter = _Counter(strict)
    counter.jaxpr(closed, 1.0)
    by = dict(sorted(counter.by_primitive.items(), key=lambda kv: -kv[1]))
    matmul = sum(v for k, v in by.items() if k in _MATMUL)
    return FlopCount(matmul=matmul, other=sum(by.values()) - matmul, by_primitive=by,
                     dynamic_loops=counter.dynamic_loops)


def xla_flops(compiled: Any) -> float:
    """XLA's ``cost_analysis()["flops"]`` of a compiled function (NaN when unavailable).
    Loop bodies count once there: use :func:`count_flops` for scanned models."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # noqa: BLE001 - backends without a cost model
        return float("nan")
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    if not cost or "flops" not in cost:
        return float("nan")
    return float(cost["flops"])


def matmul_peak_gflops(n: int = 2048, dtype: Any = jnp.float32, reps: int = 10) -> float:
    """GFLOP/s of a jitted ``n x n`` matmul in ``dtype`` on the default device, best of
    ``reps`` timed calls after one warm-up: the peak a step's FLOP rate is compared with."""
    a = jnp.ones((n, n), dtype)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        f(a).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9
