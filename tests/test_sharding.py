"""Mesh construction, partition rules and global batches on 8 simulated CPU devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jaxaffect import sharding as shd


def test_eight_devices_available():
    assert jax.device_count() == 8


@pytest.mark.parametrize("data,fsdp,model,shape", [
    (-1, 1, 1, (8, 1, 1)), (4, 2, 1, (4, 2, 1)), (2, -1, 1, (2, 4, 1)), (2, 2, 2, (2, 2, 2)),
    (1, 2, -1, (1, 2, 4)), (-1, 1, 8, (1, 1, 8)), (1, 1, 1, None)])
def test_make_mesh(data, fsdp, model, shape):
    if shape is None:
        mesh = shd.make_mesh(1, 1, devices=jax.devices()[:1])
        assert mesh.devices.shape == (1, 1, 1)
        return
    mesh = shd.make_mesh(data, fsdp, model=model)
    assert mesh.devices.shape == shape and mesh.axis_names == ("data", "fsdp", "model")
    # the model axis varies fastest: a model group is consecutive devices
    ids = np.vectorize(lambda d: d.id)(mesh.devices)
    np.testing.assert_array_equal(ids.reshape(-1), [d.id for d in jax.devices()])


@pytest.mark.parametrize("data,fsdp,model,message", [
    (3, 1, 1, "data=3 x fsdp=1 != 8 devices"), (2, 2, 3, "x model=3 != 8"),
    (-1, 3, 1, "not divisible by mesh.fsdp=3"), (-1, 1, -1, "at most one")])
def test_make_mesh_rejects_bad_shapes(data, fsdp, model, message):
    with pytest.raises(ValueError, match=message):
        shd.make_mesh(data, fsdp, model=model)


def test_leaf_partition_rules():
    assert shd.leaf_partition((512, 1024), 4, 16) == P(None, "fsdp")  # largest divisible dim
    assert shd.leaf_partition((1024, 6), 4, 16) == P("fsdp", None)
    assert shd.leaf_partition((7, 9), 4, 16) == P()  # nothing divisible
    assert shd.leaf_partition((512, 512), 1, 16) == P()  # no fsdp axis
    assert shd.leaf_partition((8,), 4, 4096) == P()  # small leaves stay replicated


def test_params_are_sharded_and_bytes_fall_with_fsdp():
    tree = {"w": jnp.ones((256, 128)), "b": jnp.ones((128,))}
    per_device = {}
    for fsdp in (1, 8):
        mesh = shd.make_mesh(-1, fsdp)
        shardings = shd.tree_shardings(tree, mesh, min_size=1024)
        placed = jax.device_put(tree, shardings)
        per_device[fsdp] = shd.bytes_per_device(placed)
        np.testing.assert_array_equal(np.asarray(placed["w"]), np.ones((256, 128)))
    assert per_device[8] < per_device[1] / 4


@pytest.mark.parametrize("data,fsdp,model", [(4, 2, 1), (2, 2, 2), (1, 1, 8)])
def test_global_batch_and_local_rows_round_trip(data, fsdp, model):
    mesh = shd.make_mesh(data, fsdp, model=model)
    batch = {"x": np.arange(16 * 3, dtype=np.float32).reshape(16, 3),
             "nested": {"m": np.arange(16) % 2 == 0}}
    g = shd.global_batch(batch, mesh)
    assert g["x"].shape == (16, 3) and g["x"].sharding.spec == P(("data", "fsdp"))
    # rows split over data x fsdp, every model device of a group holding the same rows
    assert {s.data.shape[0] for s in g["x"].addressable_shards} == {16 // (data * fsdp)}
    np.testing.assert_array_equal(shd.local_rows(g["x"]), batch["x"])
    np.testing.assert_array_equal(shd.local_rows(g["nested"]["m"]), batch["nested"]["m"])
    np.testing.assert_array_equal(shd.gather_rows(batch["x"]), batch["x"])
