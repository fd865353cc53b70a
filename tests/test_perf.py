"""count_flops against hand counts and against XLA's cost analysis (which counts loop bodies
once); xla_flops and matmul_peak_gflops."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxaffect.perf import FlopCount, count_flops, matmul_peak_gflops, xla_flops

B, D, H, C, T, L = 8, 32, 48, 5, 6, 4


def _xla(fn, *args) -> float:
    return xla_flops(jax.jit(fn).lower(*args).compile())


def _both(fn, *args) -> list[FlopCount]:
    """The count of fn and of jit(fn): the same."""
    counts = [count_flops(fn, *args), count_flops(jax.jit(fn), *args)]
    assert counts[0] == counts[1]
    return counts


def test_matmul_is_2bmnk_and_agrees_with_xla():
    a, b = jnp.ones((3, B, D)), jnp.ones((3, D, H))
    for c in _both(jnp.matmul, a, b):
        assert c.matmul == c.total == 2 * 3 * B * D * H
        assert c.by_primitive == {"dot_general": c.total}
    assert _xla(jnp.matmul, a, b) == 2 * 3 * B * D * H


def _mlp(x, w1, b1, w2):
    return jax.nn.relu(x @ w1 + b1) @ w2


def test_mlp_hand_count_and_xla():
    args = (jnp.ones((B, D)), jnp.ones((D, H)), jnp.ones((H,)), jnp.ones((H, C)))
    matmul = 2 * B * D * H + 2 * B * H * C
    for c in _both(_mlp, *args):
        assert c.matmul == matmul
        assert c.other == 2 * B * H  # bias add, relu
    assert _xla(_mlp, *args) == pytest.approx(count_flops(_mlp, *args).total, rel=0.01)


def _conv(x, k, padding="VALID", groups=1):
    return lax.conv_general_dilated(x, k, (1, 1), padding, feature_group_count=groups,
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


def test_conv_counts_every_tap():
    x, k = jnp.ones((2, 10, 12, 4)), jnp.ones((3, 3, 4, 6))
    hand = 2 * (2 * 8 * 10 * 6) * (3 * 3 * 4)  # output elements x taps x input channels
    for c in _both(_conv, x, k):
        assert c.matmul == c.total == hand
    assert _xla(_conv, x, k) == hand
    same = count_flops(lambda x, k: _conv(x, k, "SAME"), x, k).total
    assert same == 2 * (2 * 10 * 12 * 6) * (3 * 3 * 4)
    # XLA skips the taps on padding: a few percent fewer at this size
    assert 0.75 * same < _xla(lambda x, k: _conv(x, k, "SAME"), x, k) < same
    grouped = count_flops(lambda x, k: _conv(x, k, groups=2), x, jnp.ones((3, 3, 2, 6)))
    assert grouped.total == hand / 2


def _scan(x, w):
    return lax.scan(lambda c, _: (jnp.tanh(c @ w), None), x, None, length=T)[0]


def test_scan_body_counts_length_times_where_xla_counts_it_once():
    x, w = jnp.ones((B, D)), jnp.ones((D, D))
    hand = T * (2 * B * D * D + B * D)
    for c in _both(_scan, x, w):
        assert c.total == hand and c.matmul == T * 2 * B * D * D
    assert _xla(_scan, x, w) < 1.5 * hand / T


def test_fori_and_while_loops_by_trip_count():
    x, w = jnp.ones((B, D)), jnp.ones((D, D))
    mm = 2 * B * D * D
    static = count_flops(lambda x: lax.fori_loop(0, 5, lambda i, c: c @ w, x), x)
    assert static.matmul == 5 * mm and static.exact_loops
    counted = count_flops(lambda x: lax.while_loop(
        lambda c: c[0] < 10, lambda c: (c[0] + 3, c[1] @ w), (0, x))[1], x)
    assert counted.matmul == 4 * mm and counted.exact_loops  # i = 0, 3, 6, 9
    bounds = jax.jit(lambda x: lax.fori_loop(jnp.int32(2), jnp.int32(7), lambda i, c: c @ w, x))
    assert count_flops(bounds, x).matmul == 5 * mm

    def dynamic(x, n):
        return lax.fori_loop(0, n, lambda i, c: c @ w, x)

    c = count_flops(dynamic, x, 3)
    assert c.matmul == mm and c.dynamic_loops == 1 and not c.exact_loops
    with pytest.raises(ValueError, match="not static"):
        count_flops(dynamic, x, 3, strict=True)


def test_cond_counts_the_most_expensive_branch_and_calls_are_entered():
    x, w = jnp.ones((B, D)), jnp.ones((D, D))
    mm = 2 * B * D * D

    def f(x, p):
        return lax.cond(p, lambda y: y @ w @ w, lambda y: y @ w, x)

    assert count_flops(f, x, True).matmul == 2 * mm

    @jax.custom_vjp
    def g(y):
        return y @ w

    g.defvjp(lambda y: (g(y), None), lambda _, t: (t @ w.T,))
    assert count_flops(jax.checkpoint(lambda y: g(y) @ w), x).matmul == 2 * mm
    assert count_flops(jax.grad(lambda y: jnp.sum(g(y) ** 2)), x).matmul == 2 * mm


def test_scatter_add_counts_its_updates_and_gather_is_free():
    table, ids, upd = jnp.ones((100, D)), jnp.array([[1, 5, 5]]), jnp.ones((1, 3, D))
    index_wrap = 3 * ids.size  # negative indices wrapped: lt, add, select per index
    c = count_flops(lambda t, u: t.at[ids].add(u), table, upd)
    assert c.by_primitive["scatter-add"] == 3 * D and c.total == 3 * D + index_wrap
    assert count_flops(lambda t: t[ids], table).total == index_wrap
    assert count_flops(lambda t, u: t.at[ids].set(u), table, upd).total == index_wrap


class Block(nn.Module):
    @nn.compact
    def __call__(self, x, _):
        return x + nn.Dense(D)(jnp.tanh(nn.Dense(H)(x))), None


class Stack(nn.Module):
    scanned: bool

    @nn.compact
    def __call__(self, x):
        if self.scanned:
            return nn.scan(Block, variable_axes={"params": 0}, split_rngs={"params": True},
                           length=L)()(x, None)[0]
        for _ in range(L):
            x = Block()(x, None)[0]
        return x


def _model(scanned: bool):
    x = jnp.ones((B, D))
    model = Stack(scanned)
    params = model.init(jax.random.key(0), x)["params"]

    def loss(p, x):
        return jnp.mean(model.apply({"params": p}, x) ** 2)

    return model, params, x, loss


def test_model_scanned_over_layers_is_counted_like_the_unrolled_one():
    per_layer = 2 * B * D * H + 2 * B * H * D
    fwd = {}
    for scanned in (False, True):
        model, params, x, _ = _model(scanned)
        fwd[scanned] = count_flops(lambda p, x, m=model: m.apply({"params": p}, x),
                                   params, x)
        assert fwd[scanned].matmul == L * per_layer
    assert fwd[True].total == fwd[False].total
    _, params, x, loss = _model(False)
    unrolled = count_flops(jax.value_and_grad(loss), params, x)
    unrolled_xla = _xla(jax.value_and_grad(loss), params, x)
    # forward, then each dense's kernel and input gradients; not the first layer's input's
    assert unrolled.matmul == 3 * L * per_layer - 2 * B * D * H
    assert unrolled.total == pytest.approx(unrolled_xla, rel=0.02)
    _, sparams, x, sloss = _model(True)
    scanned = count_flops(jax.value_and_grad(sloss), sparams, x)
    assert scanned.matmul == 3 * L * per_layer  # the scanned body computes that one too
    assert scanned.total == pytest.approx(unrolled_xla, rel=0.05)
    assert _xla(jax.value_and_grad(sloss), sparams, x) < 0.6 * scanned.total  # loop once


class _Cost:
    def __init__(self, cost):
        self.cost = cost

    def cost_analysis(self):
        if isinstance(self.cost, Exception):
            raise self.cost
        return self.cost


@pytest.mark.parametrize("cost,want", [({"flops": 12.0}, 12.0), ([{"flops": 3}], 3.0),
                                       (None, np.nan), ([], np.nan), ({}, np.nan),
                                       (NotImplementedError(), np.nan)])
def test_xla_flops_reads_every_form(cost, want):
    got = xla_flops(_Cost(cost))
    assert got == want or (np.isnan(want) and np.isnan(got))


def test_matmul_peak_is_a_positive_rate():
    peak = matmul_peak_gflops(64, reps=2)
    assert np.isfinite(peak) and peak > 0
