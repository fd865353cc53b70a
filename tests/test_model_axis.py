"""The `model` mesh axis (tensor parallelism) on 8 simulated CPU devices: partition rules named
by the modules, their composition with fsdp, and the same numbers on every mesh as on one
device (AV-CPNet's CAF fusion; the TAM pretraining step: CTM encoder + TSC decoder)."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxaffect import sharding as shd
from jaxaffect.families.avcpnet.fusion import CAFLayer
from jaxaffect.families.tam.ctm import CTMEncoder
from jaxaffect.nn import partitioning

MESHES = [(8, 1, 1), (1, 8, 1), (1, 1, 8), (2, 2, 2)]


def test_leaf_partition_composes_model_and_fsdp():
    names = ("layers", "embed", "heads")
    # heads on model, then the largest other divisible dimension on fsdp
    assert shd.leaf_partition((2, 64, 128), 4, 16, names, 2) == P(None, "fsdp", "model")
    assert shd.leaf_partition((1000, 64), 2, 16, ("vocab", "embed"), 8) == P("model", "fsdp")
    assert shd.leaf_partition((64, 1000), 4, 16, ("embed", "vocab"), 8) == P("fsdp", "model")
    # a dimension the model axis does not divide stays whole; fsdp still applies
    assert shd.leaf_partition((2, 64, 12), 4, 16, names, 8) == P(None, "fsdp", None)
    # without a model axis, or without names: the plain FSDP rule
    assert shd.leaf_partition((2, 64, 128), 4, 16, names, 1) == P(None, None, "fsdp")
    assert shd.leaf_partition((2, 64, 128), 4, 16, None, 2) == P(None, None, "fsdp")
    # small leaves: the model rule applies (it matches the activations), fsdp does not
    assert shd.leaf_partition((2, 16), 4, 4096, ("layers", "mlp"), 4) == P(None, "model")
    assert shd.leaf_partition((2, 16), 4, 4096, ("layers", "embed"), 4) == P()


def test_mesh_spec_maps_names_that_divide():
    mesh = shd.make_mesh(2, 2, model=2)
    rules = shd.LOGICAL_AXIS_RULES
    spec = partitioning.mesh_spec((8, 3, 16), ("batch", None, "mlp"), mesh, rules)
    assert spec == P(("data", "fsdp"), None, "model")
    # a batch of 6 is not split 4 ways, 5 heads not 2 ways; a mesh axis is used once
    assert partitioning.mesh_spec((6, 5), ("batch", "heads"), mesh, rules) == P(None, None)
    assert partitioning.mesh_spec((4, 4), ("heads", "mlp"), mesh, rules) == P("model", None)


def test_param_axes_checks_the_rank():
    init = partitioning.param_axes(nn.initializers.zeros_init(), ("embed", "heads"))
    assert init(jax.random.key(0), (2, 3)).shape == (2, 3)  # not recording: not checked
    with partitioning.recording_param_axes(), pytest.raises(ValueError, match="shape"):
        init(jax.random.key(0), (2, 3, 4))


def _encoder() -> CTMEncoder:
    return CTMEncoder(modalities=("image", "audio"), width=16, num_layers=2, num_heads=4,
                      max_segments=4, dropout_rate=0.0)


def _encoder_inputs(batch: int = 2):
    rng = np.random.default_rng(0)
    features = {"image": rng.normal(size=(batch, 3, 5)).astype(np.float32),
                "audio": rng.normal(size=(batch, 3, 7)).astype(np.float32)}
    return features, np.array([[1, 1, 0]] * batch, bool)


def test_param_axes_are_recorded_only_when_asked():
    model, (features, mask) = _encoder(), _encoder_inputs()

    def both(rng):  # one program: a plain init and a recording one
        plain = model.init(rng, features, mask)["params"]
        with partitioning.recording_param_axes():
            boxed = model.init(rng, features, mask)["params"]
        return plain, boxed

    plain, boxed = jax.jit(both)(jax.random.key(0))
    assert not any(isinstance(x, nn.LogicallyPartitioned) for x in jax.tree_util.tree_leaves(
        plain, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned)))
    unboxed, names = partitioning.split_param_axes(boxed)
    # the same tree and the same values either way: the names are metadata only
    assert jax.tree_util.tree_structure(unboxed) == jax.tree_util.tree_structure(plain)
    jax.tree_util.tree_map(np.testing.assert_array_equal, unboxed, plain)
    by_name = {"/".join(k.key for k in path): v for path, v in names.items()}
    layer = "layers/attention"
    assert by_name[f"{layer}/query/kernel"] == ("layers", None, "embed", "heads")
    assert by_name[f"{layer}/out/kernel"] == ("layers", "heads", "embed")
    assert by_name["layers/mlp/dense_in/kernel"] == ("layers", "embed", "mlp")
    assert by_name["layers/mlp/dense_in/bias"] == ("layers", "mlp")
    assert by_name["layers/mlp/dense_out/kernel"] == ("layers", "mlp", "embed")
    assert "embedding/position_embedding" not in by_name  # no rule: FSDP only
    assert "layers/norm_mlp/scale" not in by_name


@pytest.mark.parametrize("jit", [False, True])
def test_constrain_is_the_identity_and_shards_under_a_mesh(jit):
    x = np.arange(8 * 3 * 16, dtype=np.float32).reshape(8, 3, 16)

    def f(v):
        return partitioning.constrain(v * 2.0, partitioning.batch_axes(3, partitioning.MLP))

    fn = jax.jit(f) if jit else f
    np.testing.assert_array_equal(np.asarray(fn(x)), x * 2.0)  # no mesh: unchanged
    mesh = shd.make_mesh(2, 2, model=2)

    def g(v):
        with partitioning.activation_sharding(mesh, shd.LOGICAL_AXIS_RULES):
            return f(v)

    out = (jax.jit(g) if jit else g)(x)
    np.testing.assert_array_equal(np.asarray(out), x * 2.0)
    assert out.sharding.is_equivalent_to(
        NamedSharding(mesh, P(("data", "fsdp"), None, "model")), 3)


# -- AV-CPNet's CAF fusion: loss and gradients on every mesh ------------------------------------
def _caf_inputs(batch: int = 8):
    rng = np.random.default_rng(1)
    x_v = rng.normal(size=(batch, 6, 32)).astype(np.float32)
    x_a = rng.normal(size=(batch, 5, 32)).astype(np.float32)
    mask_a = rng.random((batch, 5)) < 0.8
    mask_a[:, 0] = True
    return x_v, x_a, mask_a


def _caf_loss(params, x_v, x_a, mask_a):
    f_v, f_a = CAFLayer(num_heads=4).apply({"params": params}, x_v, x_a, mask_a=mask_a)
    return jnp.mean(jnp.square(f_v)) + jnp.mean(jnp.sin(f_a))


@functools.cache
def _caf_params():
    """(initial parameters on one device, {path: logical axis names})."""
    x_v, x_a, _ = _caf_inputs()
    with partitioning.recording_param_axes():
        boxed = CAFLayer(num_heads=4).init(jax.random.key(0), x_v, x_a)["params"]
    return partitioning.split_param_axes(jax.device_get(boxed))


@functools.cache
def _sharded_caf(mesh_shape):
    devices = jax.devices()[:int(np.prod(mesh_shape))]
    mesh = shd.make_mesh(mesh_shape[0], mesh_shape[1], devices=devices, model=mesh_shape[2])
    inputs = _caf_inputs()
    host_params, names = _caf_params()
    shardings = shd.tree_shardings(host_params, mesh, min_size=256, param_axes=names)
    params = jax.device_put(host_params, shardings)

    def step(p, *batch):
        with partitioning.activation_sharding(mesh, shd.LOGICAL_AXIS_RULES):
            return jax.value_and_grad(_caf_loss)(p, *batch)

    batch = [jax.device_put(x, shd.batch_sharding(mesh)) for x in inputs]
    loss, grads = jax.jit(step, in_shardings=(shardings,) + (shd.batch_sharding(mesh),) * 3,
                          out_shardings=(shd.replicated(mesh), shardings))(params, *batch)
    return params, loss, grads


@pytest.mark.parametrize("mesh", [m if m == (2, 2, 2) else pytest.param(m, marks=pytest.mark.slow)
                                  for m in MESHES])
def test_caf_fusion_same_loss_and_gradients_on_every_mesh(mesh):
    _, ref_loss, ref_grads = _sharded_caf((1, 1, 1))
    _, loss, grads = _sharded_caf(mesh)
    np.testing.assert_allclose(float(loss), float(ref_loss), rtol=1e-5)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(
        np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6), grads, ref_grads)


def test_caf_shards_split_along_the_named_dims():
    params, _, _ = _sharded_caf((2, 2, 2))
    attend = params["attend_visual"]
    # [C1, C1] projections: (embed on fsdp, heads on model); the output projection transposed
    assert attend["query"]["kernel"].sharding.spec == P("fsdp", "model")
    assert {s.data.shape for s in attend["query"]["kernel"].addressable_shards} == {(16, 16)}
    assert attend["out"]["kernel"].sharding.spec == P("model", "fsdp")
    assert {s.data.shape for s in attend["query"]["bias"].addressable_shards} == {(16,)}
    # the delta layer has no model rule: plain FSDP over its largest dimension
    delta = params["delta_visual"]["kernel"]
    assert delta.shape == (64, 32) and delta.sharding.spec == P("fsdp", None)
    assert {s.data.shape for s in delta.addressable_shards} == {(32, 32)}


# -- the TAM pretraining step through the trainer ------------------------------------------------
def _pretrain_config(mesh_shape):
    from jaxaffect.families.tam.configs import pretrain

    c = pretrain.get_config("runlocal")
    c.task = "tam_pretrain_random_batches"
    c.data.vocab_size = 64
    c.data.stream_dims = {"image": 8, "motion": 12, "audio": 4}
    c.data.num_segments = c.model.max_segments = 4
    c.data.max_comments, c.model.max_words = 4, 6
    c.model.width, c.model.num_heads, c.model.mlp_dim = 16, 8, 32
    c.model.num_layers = c.model.decoder_layers = 1
    c.pretrain.max_masked = 8
    c.training.batch_size = 8
    c.optimizer.name, c.optimizer.momentum, c.optimizer.weight_decay = "sgd", 0.0, 0.0
    c.mesh.data, c.mesh.fsdp, c.mesh.model = mesh_shape
    c.mesh.num_devices, c.mesh.min_shard_size = int(np.prod(mesh_shape)), 16
    return c


def _pretrain_step(mesh_shape):
    from jaxaffect.families.tam.pretrain_task import RandomBatchPretrainTask
    from jaxaffect.task import register
    from jaxaffect.train import Setup

    register("tam_pretrain_random_batches")(RandomBatchPretrainTask)
    setup = Setup(_pretrain_config(mesh_shape), steps_per_epoch=1)
    state = setup.init_state()
    initial = jax.device_get(state.params)
    batch = shd.global_batch(setup.task.random_batch(8), setup.mesh)
    new_state, metrics = setup.make_train_step()(state, batch, jax.random.key(3))
    return initial, new_state.params, jax.device_get(metrics)


@pytest.mark.slow
def test_pretrain_step_same_on_every_mesh_and_shards_split_as_named():
    ref_init, ref_params, ref_metrics = _pretrain_step((1, 1, 1))
    assert ref_metrics["word_count"] > 0
    for mesh in MESHES:
        init, params, metrics = _pretrain_step(mesh)
        jax.tree_util.tree_map(np.testing.assert_array_equal, init, ref_init)
        for key in ("loss", "word_loss", "time_loss", "grad_norm"):
            np.testing.assert_allclose(metrics[key], ref_metrics[key], rtol=1e-5,
                                       err_msg=f"{key} {mesh}")
        # SGD without momentum: the updated parameters compare the gradients
        jax.tree_util.tree_map(
            lambda a, b, m=mesh: np.testing.assert_allclose(
                np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6, err_msg=str(m)),
            params, ref_params)
    # shard shapes on the (2, 2, 2) mesh (the last one run)
    def shards(x):
        return {s.data.shape for s in x.addressable_shards}

    dec, enc = params["decoder"], params["encoder"]
    assert shards(dec["word_embedding"]) == {(32, 8)}  # vocab / model, d / fsdp
    assert shards(params["word_head"]["kernel"]) == {(8, 32)}  # d / fsdp, vocab / model
    assert shards(dec["layers"]["self_attention"]["query"]["kernel"]) == {(1, 8, 8)}
    assert shards(enc["layers"]["attention"]["query"]["kernel"]) == {(1, 3, 8, 8)}
    assert shards(enc["layers"]["attention"]["out"]["kernel"]) == {(1, 16, 8)}  # 2d / model
    assert shards(enc["layers"]["mlp"]["dense_in"]["kernel"]) == {(1, 8, 16)}
    assert shards(enc["layers"]["mlp"]["dense_out"]["kernel"]) == {(1, 16, 8)}
    assert shards(enc["layers"]["mlp"]["dense_in"]["bias"]) == {(1, 16)}
    assert shards(enc["embedding"]["position_embedding"]) == {(5, 8)}  # FSDP only


# -- configs -----------------------------------------------------------------------------------
def test_mesh_model_field_checks_and_resumes_older_runs():
    from jaxaffect.config_loading import ConfigError, mesh_section
    from jaxaffect.families.tam.configs import pretrain
    from jaxaffect.train import check_run_config, config_differences

    c = pretrain.get_config("runlocal")
    assert c.mesh.model == 1
    c.mesh.model = 0
    with pytest.raises(ConfigError, match="mesh.model=0"):
        check_run_config(c)
    # a run written before `mesh.model` existed had model 1: not a config change
    old = {"mesh": {k: v for k, v in mesh_section().to_dict().items() if k != "model"}}
    assert config_differences(old, {"mesh": mesh_section().to_dict()}) == {}
    new = mesh_section().to_dict() | {"model": 2}
    assert config_differences(old, {"mesh": new}) == {"mesh.model": (1, 2)}


def test_large_pretraining_config():
    from jaxaffect.config_loading import ConfigError
    from jaxaffect.families.tam.configs import pretrain

    c = pretrain.get_config("size=large")
    assert (c.model.width, c.model.num_layers, c.model.decoder_layers) == (1024, 24, 16)
    assert c.model.dtype == "bfloat16" and c.model.remat
    assert (c.mesh.data, c.mesh.fsdp, c.mesh.model) == (1, -1, 4)
    assert c.model.num_heads % c.mesh.model == 0 and c.name.endswith("_large")
    with pytest.raises(ConfigError, match="size="):
        pretrain.get_config("size=huge")


def test_random_batch_pretrain_task_has_the_task_layout():
    from jaxaffect.families.tam import batches as tb
    from jaxaffect.families.tam.pretrain_task import RandomBatchPretrainTask

    task = RandomBatchPretrainTask(_pretrain_config((1, 1, 1)))
    batch, dummy = task.random_batch(4), task.dummy_batch(4)
    assert jax.tree_util.tree_map(np.shape, batch) == jax.tree_util.tree_map(np.shape, dummy)
    tokens = batch["tokens"]
    assert (tokens[..., 0] == tb.START_ID).all()
    assert tokens[..., 1:].min() > tb.UNK_ID and tokens.max() < task.vocab_size() == 64
    assert batch["segment_mask"].all() and batch["comment_mask"].all() and batch["emotional"].any()
    assert batch["comment_segment"].max() < batch["segment_mask"].shape[1]
