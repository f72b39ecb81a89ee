"""Seed 004's hand-written backward pass, checked against matcalc.

Seed 004 trains a two-layer ReLU regression network with hand-written
backpropagation (examples/seed004.mc is its loss, with its names). Its
training loop computes

    dpred = 2.0 * (pred - y)
    db2 = np.sum(dpred, axis=0)
    dW2 = h_relu.T.dot(db2)        # wrong: should be h_relu.T.dot(dpred)
    dh_relu = db2.dot(W2.T)        # wrong: should be dpred.dot(W2.T)

`backward` below is that code, line for line; `backward_fixed` is the
correct version. Each takes the problem's inputs as keyword arguments and
returns {variable name: gradient}, the signature `matcalc check --against`
expects. Check them:

    matcalc check examples/seed004.mc --dims N=5,O=5 \\
        --against examples/seed004_handwritten.py:backward
    matcalc check examples/seed004.mc \\
        --against examples/seed004_handwritten.py:backward_fixed

At sizes where N != O (matcalc's default sizes, and the seed's own
N=32, O=10) the seed's `h_relu.T.dot(db2)` cannot even be evaluated, and
the check stops at that line. With N = O it runs, and the check names dW2
(a vector of shape (H,), not an H x O matrix) and, through dh_relu, dW1 and
db1; only db2 is right. Run this file to see both, and the fixed version
passing:

    python examples/seed004_handwritten.py
"""

import numpy as np


def backward(X, y, W1, b1, W2, b2):
    """Seed 004's forward and backward pass as written (bugs included)."""
    h = X.dot(W1) + b1
    h_relu = np.maximum(h, 0)
    pred = h_relu.dot(W2) + b2

    dpred = 2.0 * (pred - y)
    db2 = np.sum(dpred, axis=0)
    dW2 = h_relu.T.dot(db2)
    dh_relu = db2.dot(W2.T)
    dh = (h > 0) * dh_relu
    db1 = np.sum(dh, axis=0)
    dW1 = X.T.dot(dh)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def backward_fixed(X, y, W1, b1, W2, b2):
    """The same pass with dpred where the seed wrote db2."""
    h = X.dot(W1) + b1
    h_relu = np.maximum(h, 0)
    pred = h_relu.dot(W2) + b2

    dpred = 2.0 * (pred - y)
    db2 = np.sum(dpred, axis=0)
    dW2 = h_relu.T.dot(dpred)
    dh_relu = dpred.dot(W2.T)
    dh = (h > 0) * dh_relu
    db1 = np.sum(dh, axis=0)
    dW1 = X.T.dot(dh)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def main() -> None:
    from pathlib import Path

    import matcalc
    from matcalc.checks.against import check_against

    here = Path(__file__).resolve().parent
    problem = matcalc.parse((here / "seed004.mc").read_text("utf-8"), "seed004.mc")
    try:
        check_against(problem, backward)
    except matcalc.MatcalcError as err:
        print(f"at the default sizes: {err}\n")
    print(check_against(problem, backward, dims={"N": 5, "O": 5}))
    print()
    print(check_against(problem, backward_fixed))


if __name__ == "__main__":
    main()
