"""jaxaffect.op_profile: operation kinds from compiled HLO, and op time from a real trace."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxaffect import op_profile

HLO = """HloModule m

%fused_computation.1 (p0: f32[8,8], p1: f32[8,8]) -> f32[8,8] {
  %p0 = f32[8,8]{1,0} parameter(0)
  %p1 = f32[8,8]{1,0} parameter(1)
  ROOT %dot.3 = f32[8,8]{1,0} dot(%p0, %p1), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}

%fused_computation.2 (p0: f32[8,8]) -> f32[8,8] {
  %p0 = f32[8,8]{1,0} parameter(0)
  ROOT %exponential.1 = f32[8,8]{1,0} exponential(%p0)
}

ENTRY %main (a: f32[8,8], b: f32[8,8]) -> f32[8,8] {
  %a = f32[8,8]{1,0} parameter(0)
  %b = f32[8,8]{1,0} parameter(1)
  %ynn_fusion.4 = f32[8,8]{1,0} fusion(%a, %b), kind=kCustom, calls=%fused_computation.1
  %exp_fusion = f32[8,8]{1,0} fusion(%ynn_fusion.4), kind=kLoop, calls=%fused_computation.2
  %copy_bitcast_fusion.2 = f32[8,8]{0,1} fusion(%exp_fusion), kind=kLoop, calls=%fused_computation.2
  %wrapped_broadcast.7 = f32[8,8]{1,0} fusion(%a), kind=kLoop, calls=%fused_computation.2
  %transpose.1 = f32[8,8]{0,1} transpose(%a), dimensions={1,0}
  ROOT %dot.9 = f32[8,8]{1,0} dot(%a, %transpose.1), lhs_contracting_dims={1}
}
"""


def test_kinds_from_hlo_text():
    ins = op_profile.hlo_instructions(HLO)
    assert ins["ynn_fusion.4"][0] == "fusion" and " dot(" in ins["ynn_fusion.4"][1]
    kinds = {n: op_profile.xla_kind(n, ins) for n in
             ("ynn_fusion.4", "exp_fusion", "copy_bitcast_fusion.2", "wrapped_broadcast.7",
              "transpose.1", "dot.9", "not_in_the_program")}
    assert kinds == {"ynn_fusion.4": "matrix products", "exp_fusion": "other",
                     "copy_bitcast_fusion.2": "layout copies",
                     "wrapped_broadcast.7": "broadcasts", "transpose.1": "layout copies",
                     "dot.9": "matrix products", "not_in_the_program": "other"}


def test_torch_kinds():
    assert op_profile.torch_kind("aten::bmm") == "matrix products"
    assert op_profile.torch_kind("aten::copy_") == "layout copies"
    assert op_profile.torch_kind("aten::fill_") == "broadcasts"
    assert op_profile.torch_kind("aten::gelu") == "other"


def test_a_matmul_heavy_step_is_mostly_matrix_products():
    def step(a, b):
        return jnp.tanh(a @ b).sum()

    a = jnp.asarray(np.random.default_rng(0).normal(size=(512, 512)), jnp.float32)
    compiled = jax.jit(step).lower(a, a).compile()
    jax.block_until_ready(compiled(a, a))
    seconds = op_profile.xla_op_seconds(compiled, (a, a), steps=3)
    assert set(seconds) == set(op_profile.KINDS)
    assert all(v >= 0 for v in seconds.values())
    total = sum(seconds.values())
    assert total > 0
    assert seconds["matrix products"] > 0.5 * total  # 268 MFLOP of dot vs 262 k tanh
