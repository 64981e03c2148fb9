"""Engine steps per second: our NumPy MLP against the same network in torch, side by side.

    python bench/bench_nn.py [--repeats 7] [--steps 2000]

Both train the same weights on the same batches, in float64, with SGD + momentum; the
script checks that they end at the same weights, then prints medians and ratios.
torch float32 is timed too, since that is how torch is usually run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from llm_workings.data import make_dataset
from llm_workings.nn import MLP, MLPTrainer

CASES = [
    # name, sizes, dataset, samples, batch
    ("2-4-1 on XOR, batch 4", [2, 4, 1], "xor", 4, 4),
    ("2-16-16-1 on spiral, batch 32", [2, 16, 16, 1], "spiral", 400, 32),
]
LR, MOMENTUM = 0.1, 0.9


def torch_model(net: MLP, dtype: torch.dtype) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for i, (W, b) in enumerate(zip(net.weights, net.biases)):
        lin = torch.nn.Linear(W.shape[1], W.shape[0], dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < len(net.weights) - 1:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def time_ours(trainer: MLPTrainer, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    return steps / (time.perf_counter() - start)


def time_torch(model, opt, batches, steps: int) -> float:
    loss_fn = torch.nn.BCEWithLogitsLoss()
    start = time.perf_counter()
    for t in range(steps):
        X, Y = batches[t % len(batches)]
        opt.zero_grad()
        loss = loss_fn(model(X), Y)
        loss.backward()
        opt.step()
        loss.item()  # the lab reads the loss every step; so does ours
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy {np.__version__}")
    print(f"{'case':32s} {'ours steps/s':>13s} {'torch f64':>10s} {'torch f32':>10s} {'vs f64':>7s} {'vs f32':>7s}  same weights")
    for name, sizes, dataset, samples, batch in CASES:
        d = make_dataset(dataset, samples, seed=0)
        net = MLP.create(sizes, "tanh", "sigmoid", "bce", seed=0)
        start_net = net.copy()
        trainer = MLPTrainer(net, d.X_train, d.y_train, learning_rate=LR, batch_size=batch, momentum=MOMENTUM)
        # The exact batch sequence ours uses, so both runs see the same data.
        Y = net.encode_targets(d.y_train)
        idx = [trainer.batch_indices(t + 1) for t in range(trainer.steps_per_epoch * 64)]
        results = {}
        for label, dtype in (("f64", torch.float64), ("f32", torch.float32)):
            model = torch_model(start_net, dtype)
            batches = [(torch.tensor(d.X_train[i], dtype=dtype), torch.tensor(Y[i], dtype=dtype)) for i in idx]
            opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
            results[label] = (model, opt, batches)
        # Equality check first: 300 steps each from the same start.
        check = MLPTrainer(start_net.copy(), d.X_train, d.y_train, learning_rate=LR, batch_size=batch, momentum=MOMENTUM)
        time_ours(check, 300)
        model, opt, batches = results["f64"]
        time_torch(model, opt, batches, 300)
        diff = max(
            float(np.abs(W - lin.weight.detach().numpy()).max())
            for W, lin in zip(check.net.weights, [m for m in model if isinstance(m, torch.nn.Linear)])
        )
        ours, f64, f32 = [], [], []
        for _ in range(args.repeats):
            ours.append(time_ours(trainer, args.steps))
            f64.append(time_torch(*results["f64"], args.steps))
            f32.append(time_torch(*results["f32"], args.steps))
        o, t64, t32 = (statistics.median(x) for x in (ours, f64, f32))
        print(f"{name:32s} {o:13,.0f} {t64:10,.0f} {t32:10,.0f} {o / t64:6.1f}x {o / t32:6.1f}x  max|dW| {diff:.1e}")


if __name__ == "__main__":
    main()
