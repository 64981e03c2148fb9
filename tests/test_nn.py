"""The engine's contract beyond gradients: traces, schedules, divergence, mid-run changes, export."""

from __future__ import annotations

import numpy as np
import pytest

from llm_workings.data import make_dataset
from llm_workings.nn import MLP, DivergenceError, MLPTrainer


def xor_trainer(**kw) -> MLPTrainer:
    d = make_dataset("xor")
    net = MLP.create([2, 4, 1], "tanh", "sigmoid", "bce", seed=kw.pop("seed", 0))
    return MLPTrainer(net, d.X_train, d.y_train, **{"learning_rate": 0.5, "batch_size": 4, **kw})


def test_xor_is_learned_to_full_accuracy():
    trainer = xor_trainer()
    for _ in range(1000):
        trainer.step()
    d = make_dataset("xor")
    loss, acc = trainer.evaluate(d.X_test, d.y_test)
    assert acc == 1.0 and loss < 0.05


def test_trace_holds_the_forward_pass_the_backward_pass_and_the_update():
    trainer = xor_trainer(regularization="l2", reg_rate=0.01)
    trainer.step()
    t = trainer.step(trace=True)
    assert t.step == 2
    a = t.X
    for L, act in zip(t.layers, trainer.net.layer_functions()):
        np.testing.assert_allclose(L.z, a @ L.W_before.T + L.b_before)
        np.testing.assert_allclose(L.a, act.forward(L.z))
        a = L.a
        np.testing.assert_allclose(L.dR_dW, 0.01 * L.W_before)
        np.testing.assert_allclose(L.W_after, L.W_before - 0.5 * (L.dL_dW + L.dR_dW))
        np.testing.assert_allclose(L.b_after, L.b_before - 0.5 * L.dL_db)
    # The chain rule between layers: dL/da[l] = dL/dz[l+1] W[l+1].
    np.testing.assert_allclose(t.layers[0].dL_da, t.layers[1].dL_dz @ t.layers[1].W_before)
    # The trace's weights-after are the network's weights now.
    for L, W in zip(t.layers, trainer.net.weights):
        np.testing.assert_array_equal(L.W_after, W)
    expected_reg = 0.5 * 0.01 * sum((L.W_before**2).sum() for L in t.layers)
    assert t.reg_loss == pytest.approx(expected_reg)
    assert t.loss == pytest.approx(t.data_loss + t.reg_loss)


def test_learning_rate_change_takes_effect_on_the_next_step_without_reset():
    trainer = xor_trainer()
    for _ in range(5):
        trainer.step()
    before = trainer.state()
    trainer.learning_rate = 0.05
    t = trainer.step(trace=True)
    assert t.learning_rate == 0.05 and trainer.step_count == 6
    for L, W in zip(t.layers, before.weights):
        np.testing.assert_array_equal(L.W_before, W)
        np.testing.assert_allclose(L.W_after, W - 0.05 * L.dL_dW)


def test_momentum_accumulates_updates():
    trainer = xor_trainer(momentum=0.9)
    t1 = trainer.step(trace=True)
    t2 = trainer.step(trace=True)
    v1 = t1.layers[0].W_after - t1.layers[0].W_before
    np.testing.assert_allclose(t2.layers[0].W_after, t2.layers[0].W_before + 0.9 * v1 - 0.5 * t2.layers[0].dL_dW)


def test_same_seed_same_run_and_state_restore_is_exact():
    a, b = xor_trainer(seed=3), xor_trainer(seed=3)
    for _ in range(20):
        a.step()
        b.step()
    for Wa, Wb in zip(a.net.weights, b.net.weights):
        np.testing.assert_array_equal(Wa, Wb)
    saved = a.state()
    later = [a.step() for _ in range(7)]
    a.restore(saved)
    assert [a.step() for _ in range(7)] == later
    assert not np.array_equal(xor_trainer(seed=4).net.weights[0], b.net.weights[0])


def test_each_epoch_uses_every_example_once_in_a_seeded_order():
    d = make_dataset("spiral", 50, seed=0)
    net = MLP.create([2, 3, 1], seed=0)
    trainer = MLPTrainer(net, d.X_train, d.y_train, batch_size=7, seed=5)
    per_epoch = trainer.steps_per_epoch
    assert per_epoch == 4  # 25 training points in batches of 7
    for epoch in range(3):
        seen = np.concatenate([trainer.batch_indices(epoch * per_epoch + k + 1) for k in range(per_epoch)])
        assert sorted(seen) == list(range(25))
    first = [trainer.batch_indices(k + 1) for k in range(per_epoch)]
    second = [trainer.batch_indices(per_epoch + k + 1) for k in range(per_epoch)]
    assert any(not np.array_equal(x, y) for x, y in zip(first, second))


@pytest.mark.parametrize("epoch", [63, 64, 65, 200])
def test_batch_order_does_not_depend_on_what_was_asked_before(epoch):
    d = make_dataset("circle", 40, seed=0)

    def trainer():
        return MLPTrainer(MLP.create([2, 3, 1]), d.X_train, d.y_train, batch_size=10, seed=9)

    used, fresh = trainer(), trainer()
    used.batch_indices(1)
    np.testing.assert_array_equal(used.batch_indices(epoch + 1), fresh.batch_indices(epoch + 1))
    assert sorted(fresh.batch_indices(2 * epoch + 1).tolist() + fresh.batch_indices(2 * epoch + 2).tolist()) == list(range(20))


def test_divergence_from_learning_rate_is_explained_and_leaves_the_network_intact():
    d = make_dataset("gaussians", 100, seed=0)
    net = MLP.create([2, 8, 1], "relu", "linear", "mse", seed=0)
    trainer = MLPTrainer(net, d.X_train, d.y_train, learning_rate=10.0, batch_size=10)
    with pytest.raises(DivergenceError) as info:
        for _ in range(200):
            trainer.step()
    err = info.value
    assert err.cause == "learning rate"
    assert "learning rate (10)" in str(err) and f"step {err.step}" in str(err)
    assert trainer.step_count == err.step - 1
    assert all(np.isfinite(W).all() and np.abs(W).max() < 1e6 for W in trainer.net.weights)


def test_divergence_from_regularization_names_the_regularization_rate():
    trainer = xor_trainer(learning_rate=1.0, regularization="l2", reg_rate=5.0)
    with pytest.raises(DivergenceError) as info:
        for _ in range(200):
            trainer.step()
    assert info.value.cause == "regularization rate"
    assert "regularization rate (5)" in str(info.value) and "multiplies every weight by -4" in str(info.value)
    assert "below 2" in str(info.value)


def test_a_decay_that_only_oscillates_is_not_blamed():
    # lr * reg_rate = 1.5: the decay factor is -0.5, so weights shrink while flipping sign; a
    # divergence here comes from the learning rate.
    d = make_dataset("gaussians", 100, seed=0)
    net = MLP.create([2, 8, 1], "relu", "linear", "mse", seed=0)
    trainer = MLPTrainer(net, d.X_train, d.y_train, learning_rate=15.0, batch_size=10, regularization="l2", reg_rate=0.1)
    with pytest.raises(DivergenceError) as info:
        for _ in range(200):
            trainer.step()
    assert info.value.cause == "learning rate"


@pytest.mark.parametrize(
    "output, loss, words",
    [("linear", "bce", ["'bce'", "'linear'", "sigmoid"]), ("sigmoid", "cce", ["softmax"]), ("softmax", "mse", ["cce"])],
)
def test_mismatched_output_and_loss_is_refused_with_a_reason(output, loss, words):
    with pytest.raises(ValueError) as info:
        MLP.create([2, 3, 2 if output == "softmax" else 1], "tanh", output, loss)
    for w in words:
        assert w in str(info.value)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(sizes=[2]), "at least an input and an output"),
        (dict(sizes=[2, 3, 1], hidden="swish"), "unknown hidden activation 'swish'"),
        (dict(sizes=[2, 3, 2], output="sigmoid", loss="bce"), "exactly 1 output unit"),
        (dict(sizes=[2, 3, 1], hidden=["tanh", "relu"]), "1 hidden layers need 1 hidden activations"),
    ],
)
def test_bad_architectures_are_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        MLP.create(**kwargs)


def test_bad_trainer_settings_are_refused():
    d = make_dataset("xor")
    net = MLP.create([2, 2, 1])
    with pytest.raises(ValueError, match="batch_size must be between 1 and the number of training examples"):
        MLPTrainer(net, d.X_train, d.y_train, batch_size=5)
    with pytest.raises(ValueError, match="learning_rate must be a positive"):
        MLPTrainer(net, d.X_train, d.y_train, learning_rate=-1, batch_size=4)
    with pytest.raises(ValueError, match="unknown regularization 'l3'"):
        MLPTrainer(net, d.X_train, d.y_train, regularization="l3", batch_size=4)
    with pytest.raises(ValueError, match=r"input must have shape \[batch, 2\]"):
        net.forward(np.zeros((3, 5)))


def test_export_round_trip_and_bad_files():
    trainer = xor_trainer()
    for _ in range(50):
        trainer.step()
    text = trainer.net.to_json()
    loaded = MLP.from_json(text)
    np.testing.assert_array_equal(loaded.predict(make_dataset("xor").X_test), trainer.net.predict(make_dataset("xor").X_test))
    with pytest.raises(ValueError, match="not valid JSON"):
        MLP.from_json(text[:-5])
    with pytest.raises(ValueError, match="format 'llm-workings-mlp/1'"):
        MLP.from_json('{"sizes": [2, 1]}')
    broken = trainer.net.to_dict()
    broken["weights"][0] = [[1.0, 2.0]]
    with pytest.raises(ValueError, match=r"W\[1\] must have shape \(4, 2\)"):
        MLP.from_dict(broken)


def test_the_network_says_which_loss_it_uses():
    net = MLP.create([2, 4, 1], "relu", "sigmoid", "mse")
    assert repr(net) == "MLP(2-4-1, activations=['relu', 'sigmoid'], loss='mse' (mean squared error), 17 parameters)"


def test_softmax_output_trains_on_class_labels():
    d = make_dataset("moons", 200, seed=2)
    net = MLP.create([2, 8, 2], "tanh", "softmax", "cce", seed=0)
    trainer = MLPTrainer(net, d.X_train, d.y_train, learning_rate=0.3, batch_size=10)
    first = trainer.evaluate(d.X_test, d.y_test)[0]
    for _ in range(1500):
        trainer.step()
    loss, acc = trainer.evaluate(d.X_test, d.y_test)
    assert loss < first / 2 and acc > 0.9


def test_the_old_trainer_name_still_works_with_a_deprecation_warning():
    import llm_workings.nn as nn

    with pytest.warns(DeprecationWarning, match="now MLPTrainer"):
        from llm_workings.nn import Trainer
    assert Trainer is MLPTrainer
    with pytest.raises(AttributeError, match="no attribute 'Trainr'"):
        nn.Trainr  # noqa: B018
