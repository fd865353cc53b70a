"""Optimizer parameter groups, PyTorch-style Adam weight decay, init_from and min-selection."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxaffect.checkpointing import Checkpoints, read_run_params
from jaxaffect.optimizers import load_pretrained, make_optimizer, param_group_labels
from jaxaffect.train import TrainState


def _opt(**kw) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict({"name": "adam", "learning_rate": 1e-2, "weight_decay": 0.0,
                                   "decay_every_epochs": 0, "decay_factor": 0.1,
                                   "grad_clip_norm": 0.0, "param_groups": ()})
    c.update(kw)
    return c


PARAMS = {"encoder": {"layer": {"kernel": jnp.ones((3, 2))}, "pos": jnp.ones((4,))},
          "head": {"kernel": jnp.ones((2, 5)), "bias": jnp.zeros((5,))}}


def test_param_group_labels_first_match_wins():
    labels = param_group_labels(PARAMS, (("^encoder/layer/", 1.0), ("^encoder/", 2.0),
                                         ("kernel$", 3.0)))
    assert labels["encoder"]["layer"]["kernel"] == "group_0"
    assert labels["encoder"]["pos"] == "group_1"
    assert labels["head"]["kernel"] == "group_2"
    assert labels["head"]["bias"] == "default"


@pytest.mark.parametrize("jit", [False, True])
def test_param_groups_scale_first_adam_step(jit):
    # Adam's first update is -lr * sign(g) (for |g| >> eps): each group moves by its own lr.
    tx, _ = make_optimizer(_opt(param_groups=(("^encoder/", 1e-5), ("^head/", 1e-4))), 10,
                           PARAMS)
    grads = jax.tree_util.tree_map(lambda p: jnp.full(p.shape, 0.5), PARAMS)
    update = jax.jit(tx.update) if jit else tx.update
    updates, _ = update(grads, tx.init(PARAMS), PARAMS)
    np.testing.assert_allclose(updates["encoder"]["layer"]["kernel"], -1e-5, rtol=1e-4)
    np.testing.assert_allclose(updates["head"]["kernel"], -1e-4, rtol=1e-4)


def test_param_group_that_matches_nothing_is_an_error():
    with pytest.raises(ValueError, match="match no parameter"):
        make_optimizer(_opt(param_groups=(("^decoder/", 1e-5),)), 10, PARAMS)


def test_adam_weight_decay_is_coupled_l2_like_torch():
    # torch.optim.Adam adds wd * p to the gradient before the moments. With g = 0 the first
    # step is then -lr * sign(wd * p) = -lr, whereas AdamW would give -lr * wd * p.
    params = {"w": jnp.array([2.0, -3.0])}
    zero = {"w": jnp.zeros(2)}
    tx, _ = make_optimizer(_opt(weight_decay=0.5), 10)
    upd, _ = tx.update(zero, tx.init(params), params)
    np.testing.assert_allclose(upd["w"], [-1e-2, 1e-2], rtol=1e-4)
    tx_w, _ = make_optimizer(_opt(name="adamw", weight_decay=0.5), 10)
    upd_w, _ = tx_w.update(zero, tx_w.init(params), params)
    np.testing.assert_allclose(upd_w["w"], [-1e-2 * 0.5 * 2.0, 1e-2 * 0.5 * 3.0], rtol=1e-4)


def _save_run(workdir, params, step=7):
    state = TrainState(step=jnp.array(step), params=params,
                       opt_state=optax.adam(1e-3).init(params))
    ckpts = Checkpoints(workdir)
    ckpts.save_best(step, state, {"macro_f1": 0.5})
    ckpts.close()


def test_read_run_params_and_load_pretrained(tmp_path):
    pre = {"encoder": {"layer": {"kernel": jnp.arange(6.0).reshape(3, 2)},
                       "pos": jnp.full((4,), 3.0)},
           "decoder": {"w": jnp.ones((2, 2))}}
    _save_run(tmp_path / "pre", pre)
    params, step = read_run_params(tmp_path / "pre")
    assert step == 7 and set(params) == {"encoder", "decoder"}
    np.testing.assert_array_equal(params["encoder"]["layer"]["kernel"],
                                  np.arange(6.0).reshape(3, 2))
    init_from = ml_collections.ConfigDict({"workdir": str(tmp_path / "pre"), "which": "best",
                                           "subtrees": (("encoder", "encoder"),)})
    new = load_pretrained(jax.device_get(PARAMS), init_from)
    np.testing.assert_array_equal(new["encoder"]["pos"], np.full(4, 3.0))
    np.testing.assert_array_equal(new["head"]["kernel"], np.ones((2, 5)))  # untouched
    np.testing.assert_array_equal(PARAMS["encoder"]["pos"], np.ones(4))  # input not mutated


def test_load_pretrained_errors_name_the_path(tmp_path):
    _save_run(tmp_path / "pre", {"encoder": {"layer": {"kernel": jnp.ones((3, 3))},
                                             "pos": jnp.ones((4,))}})
    cfg = ml_collections.ConfigDict({"workdir": str(tmp_path / "pre"), "which": "best",
                                     "subtrees": (("encoder", "encoder"),)})
    with pytest.raises(ValueError, match="encoder/layer/kernel has shape"):
        load_pretrained(jax.device_get(PARAMS), cfg)
    cfg.subtrees = (("fusion", "encoder"),)
    with pytest.raises(KeyError, match="has no 'fusion'"):
        load_pretrained(jax.device_get(PARAMS), cfg)
    with pytest.raises(FileNotFoundError, match="no best checkpoint"):
        read_run_params(tmp_path / "nothing")


def test_best_checkpoint_min_mode(tmp_path):
    ckpts = Checkpoints(tmp_path, best_metric="mse", best_mode="min")
    state = TrainState(step=jnp.array(0), params={"w": jnp.ones(2)}, opt_state=())
    assert ckpts.save_best(1, state, {"mse": 0.5})
    assert not ckpts.save_best(2, state, {"mse": 0.7})
    assert ckpts.save_best(3, state, {"mse": 0.2})
    assert not ckpts.save_best(4, state, {"mse": float("nan")})
    assert ckpts.best_step() == 3
    ckpts.close()


def test_cosine_schedule_warms_up_then_decays_to_zero():
    """schedule="cosine": linear warm-up over warmup_epochs, then 0.5 (1 + cos) to 0 at the
    run's last step; a direct formula is the reference."""
    steps_per_epoch, total, lr = 10, 100, 1e-2
    _, schedule = make_optimizer(_opt(schedule="cosine", warmup_epochs=2.0), steps_per_epoch,
                                 total_steps=total)
    warm = 20
    for step in (0, 7, 20, 33, 60, 99, 100):
        want = (lr * step / warm if step < warm
                else 0.5 * lr * (1 + np.cos(np.pi * (step - warm) / (total - warm))))
        assert float(schedule(step)) == pytest.approx(want, rel=1e-5, abs=1e-9), step


def test_schedule_refuses_unknown_name_and_cosine_without_run_length():
    with pytest.raises(ValueError, match="optimizer.schedule='linear'"):
        make_optimizer(_opt(schedule="linear"), 10, total_steps=100)
    with pytest.raises(ValueError, match="total number of steps"):
        make_optimizer(_opt(schedule="cosine", warmup_epochs=1.0), 10)
