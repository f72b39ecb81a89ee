"""Seed 004's two-layer ReLU regression network, trained in JAX on
matcalc's closed-form gradient.

examples/seed004.mc is the seed's loss, sum((y - pred)²) with
pred = relu(X W1 + b1) W2 + b2. Generated with `--target jax`,

    matcalc codegen examples/seed004.mc --target jax -o seed004_jax.py

(here `matcalc.compile(..., target="jax")`, the same module loaded), its
`f(X, y, W1, b1, W2, b2)` is a `jax.custom_vjp` function: `jax.grad` of it
runs matcalc's backward, and the whole step is one `jax.jit`. The sizes are
the seed's (N = 32, D = 100, H = 200, O = 10); the weights start scaled by
1/√fan-in, and the steps are gradient descent with momentum. Run it from
the repository root:

    python examples/seed004_train_jax.py [--steps 300]
"""

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp

import matcalc

N, D, H, O = 32, 100, 200, 10
RATE, MOMENTUM = 1e-4, 0.9


def train(steps: int) -> list[float]:
    """The loss at each step of momentum descent on seed 004's network."""
    problem = (Path(__file__).parent / "seed004.mc").read_text(encoding="utf-8")
    f = matcalc.compile(problem, target="jax").f
    loss_and_grads = jax.value_and_grad(f, argnums=(2, 3, 4, 5))

    @jax.jit
    def step(params, velocity, X, y):
        loss, grads = loss_and_grads(X, y, *params)
        velocity = [MOMENTUM * v - RATE * g for v, g in zip(velocity, grads)]
        return [p + v for p, v in zip(params, velocity)], velocity, loss

    keys = jax.random.split(jax.random.key(0), 4)
    X, y = jax.random.normal(keys[0], (N, D)), jax.random.normal(keys[1], (N, O))
    params = [jax.random.normal(keys[2], (D, H)) / D ** 0.5, jnp.zeros(H),
              jax.random.normal(keys[3], (H, O)) / H ** 0.5, jnp.zeros(O)]
    velocity = [jnp.zeros_like(p) for p in params]
    losses = []
    for _ in range(steps):
        params, velocity, loss = step(params, velocity, X, y)
        losses.append(loss)
    return [float(loss) for loss in losses]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    losses = train(args.steps)
    for k in range(0, args.steps, max(args.steps // 6, 1)):
        print(f"step {k:4d}  loss {losses[k]:.6g}")
    print(f"loss {losses[0]:.6g} -> {losses[-1]:.6g}")
