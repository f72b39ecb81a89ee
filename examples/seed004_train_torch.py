"""Seed 004's two-layer ReLU regression network, trained in PyTorch on
matcalc's closed-form gradient.

examples/seed004.mc is the seed's loss, sum((y - pred)²) with
pred = relu(X W1 + b1) W2 + b2. Generated with `--target torch`,

    matcalc codegen examples/seed004.mc --target torch -o seed004_torch.py

(here `matcalc.compile(..., target="torch")`, the same module loaded), its
`f(X, y, W1, b1, W2, b2)` is a `torch.autograd.Function`: `loss.backward()`
runs matcalc's backward, and any torch optimiser uses it. The sizes are the
seed's (N = 32, D = 100, H = 200, O = 10); the weights start scaled by
1/√fan-in, and Adam takes the steps. Run it from the repository root:

    python examples/seed004_train_torch.py [--steps 300] [--compile]
"""

import argparse
from pathlib import Path

import torch

import matcalc

N, D, H, O = 32, 100, 200, 10


def train(steps: int, compile: bool) -> list[float]:
    """The loss at each step of Adam on seed 004's network."""
    problem = (Path(__file__).parent / "seed004.mc").read_text(encoding="utf-8")
    f = matcalc.compile(problem, target="torch").f
    f = torch.compile(f) if compile else f
    torch.manual_seed(0)
    X, y = torch.randn(N, D), torch.randn(N, O)
    params = [torch.randn(D, H) / D ** 0.5, torch.zeros(H),
              torch.randn(H, O) / H ** 0.5, torch.zeros(O)]
    params = [p.requires_grad_() for p in params]
    optimiser = torch.optim.Adam(params, lr=1e-2)
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = f(X, y, *params)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--compile", action="store_true", help="run f under torch.compile")
    args = parser.parse_args()
    losses = train(args.steps, args.compile)
    for step in range(0, args.steps, max(args.steps // 6, 1)):
        print(f"step {step:4d}  loss {losses[step]:.6g}")
    print(f"loss {losses[0]:.6g} -> {losses[-1]:.6g}")
