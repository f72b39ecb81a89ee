"""Seed 001's four-layer ReLU network, with the seed's own numbers.

Seed 001 ("Calculating gradient of NN in pure python") gives concrete data
and weights for a 4-layer ReLU regression network with err = mean((Y - T)**2)
and writes the last layer's backward pass by hand:

    DY  = 2*(Y-T)
    DB4 = DY.mean(axis=0)
    DW4 = A3.T.dot(DY) / len(X)
    DZ3 = DY.dot(W4.T)*(Z3 > 0)

This script loads examples/seed001_four_layer.mc, compiles it with matcalc,
evaluates it at the seed's numbers, prints the loss and every gradient, and
asserts that matcalc agrees with the seed's formulas (continued down to the
first layer the same way).  Run it from the repository root:

    python examples/seed001_four_layer.py
"""

from pathlib import Path

import numpy
import numpy as np

import matcalc

# Data and parameters, copied from seed 001.
X  = numpy.array([[-1.086,  0.997,  0.283, -1.506]])
T  = numpy.array([[-0.579]])
W1 = numpy.array([[-0.339, -0.047,  0.746, -0.319, -0.222, -0.217],
                  [ 1.103,  1.093,  0.502,  0.193,  0.369,  0.745],
                  [-0.468,  0.588, -0.627, -0.319,  0.454, -0.714],
                  [-0.070, -0.431, -0.128, -1.399, -0.886, -0.350]])
W2 = numpy.array([[ 0.379, -0.071,  0.001,  0.281, -0.359,  0.116],
                  [-0.329, -0.705, -0.160,  0.234,  0.138, -0.005],
                  [ 0.977,  0.169,  0.400,  0.914, -0.528, -0.424],
                  [ 0.712, -0.326,  0.012,  0.437,  0.364,  0.716],
                  [ 0.611,  0.437, -0.315,  0.325,  0.128, -0.541],
                  [ 0.579,  0.330,  0.019, -0.095, -0.489,  0.081]])
W3 = numpy.array([[ 0.191, -0.339,  0.474, -0.448, -0.867,  0.424],
                  [-0.165, -0.051, -0.342, -0.656,  0.512, -0.281],
                  [ 0.678,  0.330, -0.128, -0.443, -0.299, -0.495],
                  [ 0.852,  0.067,  0.470, -0.517,  0.074,  0.481],
                  [-0.137,  0.421, -0.443, -0.557,  0.155, -0.155],
                  [ 0.262, -0.807,  0.291,  1.061, -0.010,  0.014]])
W4 = numpy.array([[ 0.073],
                  [-0.760],
                  [ 0.174],
                  [-0.655],
                  [-0.175],
                  [ 0.507]])
B1 = numpy.array([-0.760,  0.174, -0.655, -0.175,  0.507, -0.300])
B2 = numpy.array([ 0.205,  0.413,  0.114, -0.560, -0.136,  0.800])
B3 = numpy.array([-0.827, -0.113, -0.225,  0.049,  0.305,  0.657])
B4 = numpy.array([-0.270])

HERE = Path(__file__).resolve().parent


def main():
    np.set_printoptions(precision=4, suppress=True)
    problem = matcalc.parse((HERE / "seed001_four_layer.mc").read_text(encoding="utf-8"))
    module = matcalc.compile(problem)
    inputs = dict(X=X, T=T, W1=W1, B1=B1, W2=W2, B2=B2, W3=W3, B3=B3, W4=W4, B4=B4)
    err, grads = module.value_and_grad(**inputs)

    print("matcalc's closed form:")
    print(matcalc.grad(problem))
    print()
    print(f"err = {err:.6f}")
    for name in module.WRT:
        print(f"d{name} =\n{grads[name]}")

    # The seed's forward pass (with W[0] .. W[3] spelled W1 .. W4) ...
    Z1 = X.dot(W1) + B1
    A1 = numpy.maximum(0, Z1)
    Z2 = A1.dot(W2) + B2
    A2 = numpy.maximum(0, Z2)
    Z3 = A2.dot(W3) + B3
    A3 = numpy.maximum(0, Z3)
    Y = A3.dot(W4) + B4
    seed_err = ((Y - T) ** 2).mean()

    # ... and its backward pass: the four lines from the seed, then the same
    # pattern continued through the other layers.  DY and DZk are per-sample
    # gradients; the 1/len(X) of the mean is applied in DWk and DBk.
    DY = 2 * (Y - T)
    DB4 = DY.mean(axis=0)
    DW4 = A3.T.dot(DY) / len(X)
    DZ3 = DY.dot(W4.T) * (Z3 > 0)
    DB3 = DZ3.mean(axis=0)
    DW3 = A2.T.dot(DZ3) / len(X)
    DZ2 = DZ3.dot(W3.T) * (Z2 > 0)
    DB2 = DZ2.mean(axis=0)
    DW2 = A1.T.dot(DZ2) / len(X)
    DZ1 = DZ2.dot(W2.T) * (Z1 > 0)
    DB1 = DZ1.mean(axis=0)
    DW1 = X.T.dot(DZ1) / len(X)
    seed = dict(W1=DW1, B1=DB1, W2=DW2, B2=DB2, W3=DW3, B3=DB3, W4=DW4, B4=DB4)

    assert np.isclose(err, seed_err, rtol=1e-12, atol=0), (err, seed_err)
    for name, expected in seed.items():
        got = grads[name]
        assert got.shape == expected.shape, (name, got.shape, expected.shape)
        assert np.allclose(got, expected, rtol=1e-12, atol=1e-15), (name, got, expected)

    # DZ3 itself: the gradient of err with Z3 taken as the input.
    upper = matcalc.problem("mean((relu(Z3) @ W4 + B4 - T)**2)",
                            Z3="N x H", W4="H x O", B4="O", T="N x O", wrt="Z3", name="err")
    upper_module = matcalc.compile(upper)
    _, upper_cache = upper_module.forward(*(dict(Z3=Z3, W4=W4, B4=B4, T=T)[n]
                                            for n in upper_module.INPUTS))
    (dZ3,) = upper_module.backward(upper_cache)
    print(f"dZ3 =\n{dZ3}")
    assert np.allclose(dZ3, DZ3 / len(X), rtol=1e-12, atol=1e-15), (dZ3, DZ3)

    print()
    print("matcalc agrees with seed 001's formulas (DY, DB4, DW4, DZ3, and down to DW1).")


if __name__ == "__main__":
    main()
