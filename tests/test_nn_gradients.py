"""Backprop checked two independent ways, over random networks drawn by hypothesis:
central finite differences of our own loss, and torch autograd on the same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from llm_workings.nn import MLP, MLPTrainer

OUTPUT_LOSS = [("sigmoid", "bce"), ("sigmoid", "mse"), ("softmax", "cce"), ("linear", "mse")]
HIDDEN = ["sigmoid", "tanh", "relu", "linear"]


@st.composite
def problems(draw):
    n_in = draw(st.integers(1, 4))
    hidden = draw(st.lists(st.integers(1, 6), min_size=0, max_size=3))
    output, loss = draw(st.sampled_from(OUTPUT_LOSS))
    n_out = 1 if loss == "bce" else draw(st.integers(2, 4)) if output == "softmax" else draw(st.integers(1, 3))
    acts = [draw(st.sampled_from(HIDDEN)) for _ in hidden]
    batch = draw(st.integers(1, 8))
    reg = draw(st.sampled_from(["none", "l1", "l2"]))
    reg_rate = 0.0 if reg == "none" else draw(st.floats(0.001, 0.5))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    net = MLP.create([n_in, *hidden, n_out], acts, output, loss, seed=seed)
    # Non-zero biases so that every parameter's gradient path is exercised.
    net.biases = [rng.normal(0, 0.5, b.shape) for b in net.biases]
    X = rng.normal(0, 1.0, (batch, n_in))
    if output == "softmax":
        labels = rng.integers(0, n_out, batch)
        Y = np.eye(n_out)[labels]
    elif loss == "bce":
        Y = rng.integers(0, 2, (batch, 1)).astype(float)
    else:
        Y = rng.uniform(0, 1, (batch, n_out))
    return net, X, Y, reg, reg_rate


def objective(net: MLP, X, Y, reg: str, reg_rate: float) -> float:
    fp = net.forward(X)
    penalty = 0.0
    if reg == "l1":
        penalty = reg_rate * sum(np.abs(W).sum() for W in net.weights)
    elif reg == "l2":
        penalty = 0.5 * reg_rate * sum((W * W).sum() for W in net.weights)
    return net.data_loss(fp, Y) + penalty


def analytic(net: MLP, X, Y, reg: str, reg_rate: float):
    trainer = MLPTrainer(net, X, np.zeros(len(X)), batch_size=len(X), regularization=reg, reg_rate=reg_rate)
    g = net.backward(net.forward(X), Y)
    return [gW + trainer.reg_grad(W) for gW, W in zip(g.dL_dW, net.weights)], g.dL_db


def far_from_kinks(net: MLP, X, margin=1e-4) -> bool:
    """ReLU and |w| are not differentiable at 0; finite differences straddling a kink are meaningless."""
    fp = net.forward(X)
    for z, act in zip(fp.zs, net.activations):
        if act == "relu" and np.abs(z).min() < margin:
            return False
    return all(np.abs(W).min() > margin for W in net.weights)


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.concatenate([x.ravel() for x in a]), np.concatenate([x.ravel() for x in b])
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom < 1e-12 else float(np.linalg.norm(a - b) / denom)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_gradients_match_central_finite_differences(problem):
    net, X, Y, reg, reg_rate = problem
    assume(far_from_kinks(net, X))
    gW, gb = analytic(net, X, Y, reg, reg_rate)
    eps = 1e-6
    numeric_W, numeric_b = [], []
    for params, out in ((net.weights, numeric_W), (net.biases, numeric_b)):
        for P in params:
            G = np.zeros_like(P)
            for idx in np.ndindex(P.shape):
                old = P[idx]
                P[idx] = old + eps
                up = objective(net, X, Y, reg, reg_rate)
                P[idx] = old - eps
                down = objective(net, X, Y, reg, reg_rate)
                P[idx] = old
                G[idx] = (up - down) / (2 * eps)
            out.append(G)
    assert rel_error(gW + gb, numeric_W + numeric_b) < 1e-6


TORCH_ACT = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "linear": lambda z: z,
    "softmax": lambda z: torch.softmax(z, dim=1),
}


def torch_loss(net: MLP, Ws, bs, X, Y, reg, reg_rate) -> torch.Tensor:
    """The same objective written with torch ops, on the given parameter tensors."""
    a = torch.tensor(X)
    for W, b, act in zip(Ws, bs, net.activations):
        z = a @ W.T + b
        a = TORCH_ACT[act](z)
    y = torch.tensor(Y)
    if net.loss == "bce":
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
    elif net.loss == "cce":
        loss = -(y * torch.log_softmax(z, dim=1)).sum(dim=1).mean()
    else:
        loss = 0.5 * ((a - y) ** 2).sum(dim=1).mean()
    if reg == "l1":
        loss = loss + reg_rate * sum(W.abs().sum() for W in Ws)
    elif reg == "l2":
        loss = loss + 0.5 * reg_rate * sum((W * W).sum() for W in Ws)
    return loss


def torch_parameters(net: MLP):
    return [torch.tensor(W, requires_grad=True) for W in net.weights], [torch.tensor(b, requires_grad=True) for b in net.biases]


def torch_objective(net: MLP, X, Y, reg, reg_rate):
    Ws, bs = torch_parameters(net)
    loss = torch_loss(net, Ws, bs, X, Y, reg, reg_rate)
    loss.backward()
    return float(loss.detach()), [W.grad.numpy() for W in Ws], [b.grad.numpy() for b in bs]


@settings(max_examples=200, deadline=None)
@given(problems())
def test_gradients_and_loss_match_torch_autograd(problem):
    net, X, Y, reg, reg_rate = problem
    assume(far_from_kinks(net, X, margin=1e-9))
    ours_W, ours_b = analytic(net, X, Y, reg, reg_rate)
    loss, torch_W, torch_b = torch_objective(net, X, Y, reg, reg_rate)
    assert objective(net, X, Y, reg, reg_rate) == pytest.approx(loss, rel=1e-10, abs=1e-12)
    assert rel_error(ours_W + ours_b, torch_W + torch_b) < 1e-9


@settings(max_examples=50, deadline=None)
@given(problems(), st.floats(0.0, 0.95), st.floats(1e-3, 1.0))
def test_trainer_update_matches_torch_sgd(problem, momentum, lr):
    """Several steps of our SGD-with-momentum equal torch.optim.SGD (plus the same penalty) on the same batch."""
    net, X, Y, reg, reg_rate = problem
    assume(far_from_kinks(net, X, margin=1e-9))
    ref = net.copy()
    labels = Y.argmax(axis=1) if net.activations[-1] == "softmax" else Y[:, 0]
    trainer = MLPTrainer(
        net, X, labels, learning_rate=lr, batch_size=len(X), momentum=momentum, regularization=reg, reg_rate=reg_rate
    )
    trainer.Y = Y  # regression targets may not be class labels
    Ws, bs = torch_parameters(ref)
    opt = torch.optim.SGD(Ws + bs, lr=lr, momentum=momentum)
    for _ in range(3):
        trainer.step()
        opt.zero_grad()
        torch_loss(ref, Ws, bs, X, Y, reg, reg_rate).backward()
        opt.step()
    for ours, theirs in zip(net.weights + net.biases, Ws + bs):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-9, atol=1e-12)
