"""Every derivative rule in the operator table, checked against finite differences.

`CASES` maps each entry of `matcalc.ops.OPS` that has a derivative rule to small
problems that use it; `test_every_differentiable_op_has_a_case` fails when an
op is added to the table without a case here.
"""

from __future__ import annotations

import dataclasses
import re
import types

import numpy as np
import pytest
import sympy

import matcalc
from matcalc import ops
from matcalc.ir.expr import Apply, apply, const, postorder, var
from matcalc.checks.verify import check as verify_check, domains, draw, sizes

SEEDS = (0, 1)

# op name -> [(expression, {variable: shape})]; each expression must contain
# the op in its graph (checked by test_case_uses_its_op).
M = {"X": "N x D", "Y": "N x D"}
CASES: dict[str, list[tuple[str, dict]]] = {
    "add": [
        ("sum((X + Y) ** 2)", M),
        ("sum((X + b) ** 2)", {"X": "N x D", "b": "D"}),             # matrix + vector bias
        ("sum((c + X) ** 2)", {"X": "N x D", "c": "scalar"}),        # scalar + matrix
        ("sum((X + x[:, None]) ** 2)", {"X": "N x D", "x": "N"}),    # column broadcast
        ("sum((x[:, None] + y[None, :]) ** 2)", {"x": "N", "y": "D"}),
        ("(x + y) @ (x - y)", {"x": "N", "y": "N"}),
        ("X + b", {"X": "N x D", "b": "D"}),                         # array-valued
        ("a + b", {"a": "scalar", "b": "scalar"}),
    ],
    "mul": [
        ("sum(X * Y)", M),
        ("sum(c * X * Y)", {"X": "N x D", "Y": "N x D", "c": "scalar"}),  # scalar * matrix
        ("sum(X * b * X)", {"X": "N x D", "b": "D"}),
        ("sum(X * x[:, None])", {"X": "N x D", "x": "N"}),
        ("sum(X * x[None, :])", {"X": "N x D", "x": "D"}),
        ("x * y * x", {"x": "N", "y": "N"}),                         # used several times
        ("X * c", {"X": "N x D", "c": "scalar"}),
        ("a * b * a", {"a": "scalar", "b": "scalar"}),
        ("2 / N * X", {"X": "N x D"}),                               # constant coefficient
    ],
    "div": [
        ("sum(X / (Y ** 2 + 1))", M),
        ("sum(X / exp(b))", {"X": "N x D", "b": "D"}),
        ("sum(X / (c ** 2 + 1))", {"X": "N x D", "c": "scalar"}),
        ("1 / (1 + x ** 2)", {"x": "N"}),
        ("sum(X / exp(x)[:, None])", {"X": "N x D", "x": "N"}),
    ],
    "pow": [
        ("sum(X ** 2)", {"X": "N x D"}),
        ("x ** 3 - 2 * x ** 2", {"x": "N"}),
        ("sum(x ** 0.5)", {"x": "N"}),                               # positive domain
        ("sum(x ** y)", {"x": "N", "y": "N"}),                       # variable exponent
        ("sum(2 ** x)", {"x": "N"}),                                 # constant base
        ("sum(exp(X) ** c)", {"X": "N x D", "c": "scalar"}),
        ("a ** 3", {"a": "scalar"}),
    ],
    "matmul": [
        ("sum((X @ W) ** 2)", {"X": "N x D", "W": "D x H"}),         # matrix @ matrix
        ("X @ W", {"X": "N x D", "W": "D x H"}),
        ("sum((A @ y) ** 2)", {"A": "N x D", "y": "D"}),             # matrix @ vector
        ("A @ y", {"A": "N x D", "y": "D"}),
        ("sum((x @ A) ** 2)", {"x": "N", "A": "N x D"}),             # vector @ matrix
        ("x @ A", {"x": "N", "A": "N x D"}),
        ("x @ y", {"x": "N", "y": "N"}),                             # vector @ vector
        ("x @ A @ x", {"x": "N", "A": "N x N"}),                     # x used twice
        ("sum(X @ X.T @ X)", {"X": "N x D"}),                        # X used three times
        ("x[:, None] @ y[None, :]", {"x": "N", "y": "D"}),
        ("sum(A @ B @ C)", {"A": "N x D", "B": "D x H", "C": "H x N"}),
    ],
    "transpose": [
        ("sum(exp(X.T @ Y))", M),
        ("sum(exp(X' @ Y))", M),
        ("(A @ B).T", {"A": "N x D", "B": "D x N"}),
        ("sum(((A + B).T @ A) ** 2)", {"A": "N x N", "B": "N x N"}),
        ("exp(A).T", {"A": "N x D"}),
        ("(X * Y).T", M),
        ("sum((X.T.T.T @ X) ** 2)", {"X": "N x D"}),                 # nested transposes
        ("x[:, None].T", {"x": "N"}),
    ],
    "col": [
        ("sum(X * x[:, None])", {"X": "N x D", "x": "N"}),
        ("x[:, None] * exp(y[None, :])", {"x": "N", "y": "D"}),
        ("X + x[:, None]", {"X": "N x D", "x": "N"}),
    ],
    "row": [
        ("sum(X * x[None, :])", {"X": "N x D", "x": "D"}),
        ("x[:, None] + y[None, :]", {"x": "N", "y": "D"}),
        ("x[None, :] @ A", {"x": "N", "A": "N x D"}),
    ],
    "sum": [
        ("sum(X ** 2)", {"X": "N x D"}),
        ("sum(sum(X, axis=(0, 2)) ** 2)", {"X": "B x T x D"}),       # axes of a 3-D array
        ("sum(mean(X, axis=1) ** 2)", {"X": "B x T x D"}),
        ("sum(exp(X + c) * b)", {"X": "B x T x D", "c": "T x 1", "b": "D"}),
        ("sum(sum(X, axis=0) ** 2)", {"X": "N x D"}),
        ("sum(sum(X, axis=1) ** 2)", {"X": "N x D"}),
        ("sum(X, axis=-1) @ y", {"X": "N x D", "y": "N"}),
        ("sum(X @ A, axis=1)", {"X": "N x D", "A": "D x D"}),
        ("sum(x) * x", {"x": "N"}),
    ],
    "outer": [
        ("sum(outer(x, y) * X)", {"x": "N", "y": "D", "X": "N x D"}),
        ("outer(x, y)", {"x": "N", "y": "D"}),
        ("outer(x, x)", {"x": "N"}),
    ],
    "trace": [
        ("trace(A)", {"A": "N x N"}),
        ("tr(A @ B)", {"A": "N x D", "B": "D x N"}),
        ("trace(A) * A", {"A": "N x N"}),
    ],
    "det": [
        ("det(A)", {"A": "N x N"}),
        ("det(A) * sum(x)", {"A": "N x N", "x": "N"}),
    ],
    "logdet": [
        ("logdet(A)", {"A": "N x N"}),
        ("logdet(A) + c * trace(A)", {"A": "N x N", "c": "scalar"}),
    ],
    "inv": [
        ("sum(inv(A))", {"A": "N x N"}),
        ("x @ inv(A) @ x", {"A": "N x N", "x": "N"}),
        ("inv(A) @ x", {"A": "N x N", "x": "N"}),
        ("trace(inv(A) @ B)", {"A": "N x N", "B": "N x N"}),
    ],
    "exp": [("sum(exp(X) * Y)", M), ("exp(-x)", {"x": "N"})],
    "log": [("sum(log(X) * Y)", M), ("log(x)", {"x": "N"})],
    "sqrt": [("sum(sqrt(X) * Y)", M), ("sqrt(x)", {"x": "N"})],
    "abs": [("sum(abs(X) * Y)", M), ("abs(x)", {"x": "N"})],
    "sin": [("sum(sin(X) * Y)", M), ("sin(x)", {"x": "N"})],
    "cos": [("sum(cos(X) * Y)", M), ("cos(x)", {"x": "N"})],
    "tanh": [("sum(tanh(X) * Y)", M), ("tanh(x)", {"x": "N"})],
    "sigmoid": [("sum(sigmoid(X) * Y)", M), ("sigmoid(x)", {"x": "N"}),
                ("log(2 - sigmoid(x))", {"x": "N"})],
    "relu": [("sum(relu(X) * Y)", M), ("relu(x)", {"x": "N"}),
             ("relu(X) @ W", {"X": "N x D", "W": "D x H"})],
    "softplus": [("sum(softplus(X) * Y)", M), ("softplus(x)", {"x": "N"})],
    "log1p": [("sum(log1p(X) * Y)", M), ("log1p(x)", {"x": "N"})],
    "tan": [("sum(tan(X) * Y)", M), ("tan(x)", {"x": "N"})],
    "arcsin": [("sum(arcsin(X) * Y)", M), ("arcsin(x)", {"x": "N"})],   # |x| < 1
    "arccos": [("sum(arccos(X) * Y)", M), ("arccos(x)", {"x": "N"})],
    "arctan": [("sum(arctan(X) * Y)", M), ("arctan(x)", {"x": "N"})],
    "sinh": [("sum(sinh(X) * Y)", M), ("sinh(x)", {"x": "N"})],
    "cosh": [("sum(cosh(X) * Y)", M), ("cosh(x)", {"x": "N"})],
    "expm1": [("sum(expm1(X) * Y)", M), ("expm1(x)", {"x": "N"})],
    "square": [("sum(square(X) * Y)", M), ("square(x)", {"x": "N"})],
    "maximum": [("sum(maximum(X, 0) * Y)", M), ("sum(maximum(X, Y) ** 2)", M),
                ("maximum(x, c)", {"x": "N", "c": "scalar"}),
                ("sum(maximum(X, b) * Y)", {"X": "N x D", "Y": "N x D", "b": "D"})],
    "minimum": [("sum(minimum(X, 1) * Y)", M), ("sum(minimum(X, Y) ** 2)", M),
                ("minimum(x, c)", {"x": "N", "c": "scalar"})],
    "softmax": [("sum(softmax(X, axis=1) * Y)", M), ("sum(softmax(X, axis=0) * Y)", M),
                ("sum(softmax(X) * Y)", M), ("softmax(x)", {"x": "N"}),
                ("sum(sqrt(softmax(X, axis=-1)) * Y)", M)],
    "max": [("sum(max(X, axis=1) * y)", {"X": "N x D", "y": "N"}), ("max(x)", {"x": "N"}),
            ("sum(max(X, axis=(0, 2)) ** 2)", {"X": "B x T x D"}),
            ("sum(max(X, axis=-1, keepdims=True) * X)", {"X": "B x T x D"})],
    "expand_dims": [("sum(sum(X, axis=(0, 2), keepdims=True) * Y)",
                     {"X": "B x T x D", "Y": "B x T x D"}),
                    ("sum(X[:, :, None] * Y)", {"X": "N x D", "Y": "N x D x K"}),
                    ("sum(X[:, None] * sin(X[:, :, None]))", M)],
    "min": [("sum(min(X, axis=0) * y)", {"X": "N x D", "y": "D"}),
            ("sum(sin(min(X, axis=(1, 2))))", {"X": "B x T x D"})],
    "logsumexp": [("sum(logsumexp(X, axis=1) * y)", {"X": "N x D", "y": "N"}),
                  ("sum(logsumexp(X, axis=0) * y)", {"X": "N x D", "y": "D"}),
                  ("logsumexp(X)", M), ("logsumexp(x)", {"x": "N"}),
                  ("logsumexp(X, axis=1)", M)],
    "solve": [("sum(solve(A, B) * C)", {"A": "N x N", "B": "N x K", "C": "N x K"}),
              ("solve(A, b) @ c", {"A": "N x N", "b": "N", "c": "N"}),
              ("solve(A, B)", {"A": "N x N", "B": "N x K"})],
    "diag": [("sum(diag(X) * y)", {"X": "N x N", "y": "N"}), ("diag(X)", {"X": "N x N"}),
             ("sum(sin(diag(X @ X.T)))", {"X": "N x D"})],
    "diagm": [("sum(diag(y) * X)", {"X": "N x N", "y": "N"}),
              ("sum(sin(diag(y)) @ x)", {"x": "N", "y": "N"}), ("diag(y)", {"y": "N"})],
    "norm": [("norm(x)", {"x": "N"}), ("norm(X)", M), ("norm(X @ w - y)",
                                                       {"X": "N x D", "w": "D", "y": "N"})],
    "norm1": [("norm1(x)", {"x": "N"}), ("norm1(X - Y)", M)],
    "kron": [("sum(sin(kron(A, B)))", {"A": "M x N", "B": "P x Q"}),
             ("sum(kron(A, B) @ kron(C, E))",
              {"A": "M x N", "B": "P x Q", "C": "N x M", "E": "Q x P"}),
             ("kron(A, B)", {"A": "M x N", "B": "P x Q"})],
    "unkron_left": [("sum(sin(unkron_left(G, B)))", {"G": "6 x 6", "B": "2 x 3"})],
    "unkron_right": [("sum(sin(unkron_right(G, A)))", {"G": "6 x 6", "A": "3 x 2"})],
    "erf": [("sum(erf(X) * Y)", M), ("erf(x)", {"x": "N"}),
            ("sum(x * (1 + erf(x / sqrt(2))) / 2)", {"x": "N"})],        # exact GELU
    "log2": [("sum(log2(X) * Y)", M), ("log2(x)", {"x": "N"})],
    "log10": [("sum(log10(X) * Y)", M), ("log10(x)", {"x": "N"})],
    "arcsinh": [("sum(arcsinh(X) * Y)", M), ("arcsinh(x)", {"x": "N"})],
    "arccosh": [("sum(arccosh(X) * Y)", M), ("arccosh(x)", {"x": "N"})],  # x > 1
    "arctanh": [("sum(arctanh(X) * Y)", M), ("arctanh(x)", {"x": "N"})],  # |x| < 1
    "silu": [("sum(silu(X) * Y)", M), ("silu(x)", {"x": "N"}), ("sum(silu(silu(X)))", M)],
    "gelu": [("sum(gelu(X) * Y)", M), ("gelu(x)", {"x": "N"}), ("sum(gelu(X) ** 2)", M)],
    "elu": [("sum(elu(X) * Y)", M), ("elu(x, alpha=0.5)", {"x": "N"}),
            ("sum(elu(X, alpha=2) ** 2)", M)],
    "leaky_relu": [("sum(leaky_relu(X) * Y)", M), ("leaky_relu(x, negative_slope=0.2)", {"x": "N"}),
                   ("sum(leaky_relu(X, negative_slope=-0.5) ** 2)", M)],
    "logaddexp": [("sum(logaddexp(X, Y) ** 2)", M), ("logaddexp(x, c)", {"x": "N", "c": "scalar"}),
                  ("sum(logaddexp(X, b) * Y)", {"X": "N x D", "Y": "N x D", "b": "D"})],
    "clip": [("sum(clip(X, -0.5, 0.5) * Y)", M),
             ("sum(clip(X, lo, hi) ** 2)", {"X": "N x D", "lo": "scalar", "hi": "scalar"}),
             ("clip(x, a - 1, a + 1)", {"x": "N", "a": "N"})],
    "where": [("sum(where(X > 0, X, 0.1 * X) ** 2)", {"X": "N x D"}),
              ("sum(where(X <= Y, sin(X), Y ** 2))", M),
              ("where(x != 0, x * y, c)", {"x": "N", "y": "N", "c": "scalar"}),
              ("sum(softmax(where(tril(ones(N, N)) > 0, S, -1e9), axis=1) * V)",
               {"S": "N x N", "V": "N x N"})],                                # a causal mask
    "compare": [("sum(where(x >= b, x ** 2, b))", {"x": "N", "b": "scalar"}),
                ("sum(where(X == Y, X, X * Y))", M),
                ("sum(where(X < Y, X, Y))", M)],
    "triu": [("sum(triu(A) * B)", {"A": "N x N", "B": "N x N"}),
             ("sum(triu(A, k=-1) ** 2)", {"A": "N x D"}),
             ("triu(A @ A.T, k=1)", {"A": "N x D"})],
    "tril": [("sum(tril(A) * B)", {"A": "N x N", "B": "N x N"}),
             ("sum(tril(A, k=1) ** 2)", {"A": "N x D"})],
    "cumsum": [("sum(cumsum(x) ** 2)", {"x": "N"}), ("cumsum(x)", {"x": "N"}),
               ("sum(cumsum(X, axis=1) ** 2) + sum(sin(cumsum(X, axis=0)))", M)],
    "revcumsum": [("sum(revcumsum(X, axis=1) ** 2)", M),
                  ("sum(sin(revcumsum(x, axis=0)))", {"x": "N"})],
    "contract": [('sum(sin(einsum("btd,dk->btk", X3, W)))', {"X3": "B x T x D", "W": "D x K"}),
                 ('sum(cos(einsum("bii,bj->bij", A3, V)))', {"A3": "B x N x N", "V": "B x N"}),
                 ("sum(tanh(P3 @ R3))", {"P3": "B x N x D", "R3": "B x D x K"})],
    "permute": [("sum(sin(transpose(X3, (1, 2, 0))) * Y3)",
                 {"X3": "B x T x D", "Y3": "T x D x B"}),
                ("sum(swapaxes(X3, 0, 1) ** 3)", {"X3": "B x T x D"})],
    "index": [("sum(X[:, -1] * X[0, ::-1, None])", {"X": "N x D x N"}),
              ("sum(tanh(X[1:, ::-1]) * X[:-1])", M)],
    "reshape": [("sum(sin(reshape(X, (D, N))) * X.T)", M),
                ("sum(reshape(X * b, (-1,)) ** 3)", {"X": "N x D x K", "b": "K"})],
    "gather": [("sum(E[tokens] ** 3)", {"E": "V x D", "tokens": "N x K int"}),
               ("sum(sin(e[tokens]))", {"e": "V", "tokens": "N int"})],
    "concatenate": [("sum(tanh(concatenate((X, Y * X), axis=1)) ** 2)", M),
                    ("sum(stack((x, y), axis=1) ** 3)", {"x": "N", "y": "N"})],
}

# Zero derivative almost everywhere: covered by the zero-derivative tests below
# (whether the table gives them no rule or a rule that returns zero).
ZERO_DERIVATIVE = ("step", "sign")

# mean and sum through their builders, every axis, matrices and vectors.
BUILDER_CASES = [
    ("sum(X * Y)", M),
    ("sum(X, axis=None) * sum(Y)", M),
    ("sum(X, axis=0)", {"X": "N x D"}),
    ("sum(X, axis=1)", {"X": "N x D"}),
    ("sum(x, axis=0) * x", {"x": "N"}),
    ("sum(x, axis=None) * x", {"x": "N"}),
    ("mean(X) * Y", M),
    ("mean(X, axis=None) * Y", M),
    ("mean(X, axis=0)", {"X": "N x D"}),
    ("mean(X, axis=1)", {"X": "N x D"}),
    ("mean(X * Y, axis=-1)", M),
    ("mean(x, axis=0) * x", {"x": "N"}),
    ("mean(x) * x", {"x": "N"}),
    ("mean(X ** 2, axis=0) @ mean(Y, axis=0)", M),
    ("norm(x, ord=1) + norm(x, ord=2) + norm(X, ord='fro')", {"x": "N", "X": "N x D"}),
    ("norm(X, axis=1)", {"X": "N x D"}),
    ("norm(X, ord=1, axis=0)", {"X": "N x D"}),
    ("norm(X - Y, axis=-1) @ norm(X, ord=2, axis=1)", M),
    ("pi * sum(x ** 2) + e * sum(x)", {"x": "N"}),
    ("sum(log_sigmoid(X) * Y)", M),                                  # -softplus(-X)
    ("logsigmoid(x)", {"x": "N"}),
    ("sum(eye(N, D) * X) + sum(eye(D, N) @ X)", {"X": "N x D"}),
]


# Problems with named intermediates (a name used several times, chains).
INTERMEDIATE_CASES = [
    ("Z = X @ W\nf = sum(Z * Z) + sum(Z)", {"X": "N x D", "W": "D x H"}),
    ("Z1 = X @ W1 + b1\nA1 = tanh(Z1)\nY = A1 @ W2\nf = sum((Y - T) ** 2) / N + sum(A1)",
     {"X": "N x D", "W1": "D x H", "b1": "H", "W2": "H x O", "T": "N x O"}),
    ("S = X @ W + b", {"X": "N x D", "W": "D x K", "b": "K"}),
    ("u = x * 2\nv = u + x\nf = u @ v", {"x": "N"}),
]


def build(source: str, shapes: dict):
    """A problem from an expression, or from statements ending in the function."""
    if not re.match(r"\w+ = ", source):
        return matcalc.problem(source, **shapes)
    decls = "".join(f"{n}: {s}\n" for n, s in shapes.items())
    return matcalc.parse(decls + source + "\n")


# Operators the language cannot write (derivation-internal marks, the
# adjoints of indexing and gather): checked by wrapping a subexpression of
# an ordinary problem in them by hand.
INTERNAL = {
    "adjoint": lambda x, tokens: apply(ops.OPS["adjoint"], (x,)),
    "expand_dims": lambda x, tokens: apply(ops.OPS["expand_dims"], (x,), (("axis", (1,)),)),
    "unindex": lambda x, tokens: ops.unindex(x, (x.shape[0], 3, x.shape[1]),
                                             ((None, None, None), 1)),
    "scatter_add": lambda x, tokens: ops.scatter_add(x, tokens, (x.shape[1], x.shape[1])),
}
INTERNAL_OPS = tuple(INTERNAL)


def internal_problem(op: str):
    """sum(op(X @ W) ** 2), with `op` applied to X @ W as a graph node
    (scatter_add by the integer input `tokens`)."""
    base = matcalc.parse("X: N x D\nW: D x H\ntokens: N int\nf = X @ W")
    inner = base.output.args[0] if getattr(base.output, "op", None) == "name" else base.output
    marked = INTERNAL[op](inner, base.variables["tokens"])
    output = ops.reduce_sum(ops.power(marked, const(2)))
    return dataclasses.replace(base, output=output, intermediates={}, source=None)


def _ops_used(p) -> set:
    return {n.op for n in postorder([p.output]) if isinstance(n, Apply)}


def _ids(cases):
    return [f"{op}:{expr}" for op, expr, _ in cases]


OP_CASES = [(op, expr, shapes) for op, cases in CASES.items() for expr, shapes in cases]


def _check_all_seeds(p):
    for seed in SEEDS:
        result = matcalc.check(p, seed=seed)
        assert result.ok, f"seed {seed}:\n{result}\n{matcalc.grad(p)}"
        assert set(result.errors) == set(p.wrt)


def test_every_differentiable_op_has_a_case():
    differentiable = {name for name, op in ops.OPS.items() if op.vjp is not None}
    covered = set(ZERO_DERIVATIVE)
    for _, expr, shapes in OP_CASES:
        covered |= _ops_used(build(expr, shapes))
    for expr, shapes in BUILDER_CASES + INTERMEDIATE_CASES:
        covered |= _ops_used(build(expr, shapes))
    for op in INTERNAL_OPS:
        if op in ops.OPS:
            covered |= _ops_used(internal_problem(op))
    missing = differentiable - covered
    assert not missing, f"ops with a derivative rule but no test case: {sorted(missing)}"
    assert set(CASES) <= set(ops.OPS), "a case names an op that is not in the table"
    assert set(CASES) | set(ZERO_DERIVATIVE) >= differentiable - {"name", *INTERNAL_OPS}


@pytest.mark.parametrize("op, expr, shapes", OP_CASES, ids=_ids(OP_CASES))
def test_case_uses_its_op(op, expr, shapes):
    used = _ops_used(build(expr, shapes))
    assert op in used, f"{expr!r} does not exercise {op!r} (uses {sorted(used)})"


@pytest.mark.parametrize("op, expr, shapes", OP_CASES, ids=_ids(OP_CASES))
def test_op_gradient_matches_finite_differences(op, expr, shapes):
    _check_all_seeds(matcalc.problem(expr, **shapes))


@pytest.mark.parametrize("expr, shapes", BUILDER_CASES, ids=[c[0] for c in BUILDER_CASES])
def test_builder_gradient_matches_finite_differences(expr, shapes):
    _check_all_seeds(matcalc.problem(expr, **shapes))


@pytest.mark.parametrize("op", INTERNAL_OPS)
def test_internal_op_gradient_matches_finite_differences(op):
    if op not in ops.OPS:
        pytest.skip(f"no {op!r} in this operator table")
    p = internal_problem(op)
    assert op in _ops_used(p)
    _check_all_seeds(p)


@pytest.mark.parametrize("source, shapes", INTERMEDIATE_CASES,
                         ids=[c[0].splitlines()[-1] for c in INTERMEDIATE_CASES])
def test_intermediates_gradient_matches_finite_differences(source, shapes):
    _check_all_seeds(build(source, shapes))


@pytest.mark.parametrize("axis, shape", [(None, ()), (0, ("D",)), (1, ("N",))])
@pytest.mark.parametrize("fn", ["sum", "mean"])
def test_reductions_have_numpy_semantics(fn, axis, shape):
    p = matcalc.problem(f"{fn}(X, axis={axis})", X="N x D")
    assert tuple(str(d) for d in p.output.shape) == shape
    m = matcalc.compile(p)
    X = np.random.default_rng(3).standard_normal((4, 3))
    value, _ = m.forward(X)
    np.testing.assert_allclose(value, getattr(np, fn)(X, axis=axis))


# ------------------------------------------------------------- domains ---

@pytest.mark.parametrize("text", ["log1p(X)", "log1p(-X)", "log(1 - X)", "log1p(X / 2)"])
def test_log1p_inputs_are_drawn_in_its_domain(text):
    """log1p takes x > -1 (it said x > 0, and drew X > 0, where log(1 - X)
    is not defined): X is drawn with |X| < 1, so ±X is in the domain."""
    p = matcalc.problem(f"sum({text} * Y)", X="N x D", Y="N x D")
    assert ops.OPS["log1p"].domain == "above_minus_one"
    assert domains(p) == {"X": "above_minus_one"}
    for seed in range(5):
        values = draw(p, sizes(p), np.random.default_rng(seed))
        assert np.all(np.abs(values["X"]) < 1)
    assert matcalc.check(p).ok


@pytest.mark.parametrize("fn", ["log", "sqrt"])
def test_positive_domain_inputs_are_drawn_positive(fn):
    p = matcalc.problem(f"sum({fn}(X) * Y)", X="N x D", Y="N x D")
    assert ops.OPS[fn].domain == "positive"
    assert domains(p) == {"X": "positive"}
    for seed in range(5):
        values = draw(p, sizes(p), np.random.default_rng(seed))
        assert np.all(values["X"] > 0)
        assert np.any(values["Y"] < 0)  # unrestricted variables are not forced positive


def test_fractional_power_draws_positive_base():
    p = matcalc.problem("sum(x ** 0.5) + sum(y ** 2)", x="N", y="N")
    assert domains(p) == {"x": "positive"}


def _is_spd(a):
    return np.allclose(a, a.T) and np.linalg.eigvalsh(a).min() > 0


@pytest.mark.parametrize("expr", ["logdet(A)", "det(A)", "sum(inv(A))"])
def test_square_matrix_functions_draw_spd_inputs(expr):
    # matcalc.checks.verify documents "symmetric positive definite under inv, det and
    # logdet": the check must not feed a random (possibly near-singular)
    # matrix to them.
    p = matcalc.problem(expr, A="N x N")
    assert domains(p) == {"A": "spd"}
    for seed in range(5):
        values = draw(p, sizes(p), np.random.default_rng(seed))
        assert _is_spd(values["A"])


# ----------------------------------------------- zero derivatives / unused ---

def _is_symbolic_zero(node):
    return ops.is_zero(node)


@pytest.mark.parametrize("fn", ZERO_DERIVATIVE)
def test_zero_derivative_functions_contribute_nothing(fn):
    p = matcalc.parse(f"X: N x D\nY: N x D\nf = sum({fn}(X) * Y)\nwrt X, Y\n")
    g = matcalc.grad(p)
    assert _is_symbolic_zero(g["X"])
    assert g["Y"] is ops.func(fn, p.variables["X"])
    _check_all_seeds(p)


@pytest.mark.parametrize("fn", ZERO_DERIVATIVE)
def test_zero_derivative_path_leaves_other_paths(fn):
    # x reaches f both through fn (no contribution) and directly.
    p = matcalc.problem(f"sum({fn}(x) * x)", x="N")
    g = matcalc.grad(p)
    assert g["x"] is ops.func(fn, p.variables["x"])
    _check_all_seeds(p)


def test_unused_variable_gets_zero_gradient():
    p = matcalc.parse("X: N x D\nY: M x K\nz: scalar\nv: K\nf = sum(X ** 2)\nwrt X, Y, z, v\n")
    g = matcalc.grad(p)
    for name in ("Y", "z", "v"):
        assert _is_symbolic_zero(g[name]), name
        assert g[name].shape == p.variables[name].shape
    m = matcalc.compile(p)
    rng = np.random.default_rng(0)
    inputs = {"X": rng.standard_normal((2, 3)), "Y": rng.standard_normal((4, 5)),
              "z": 1.5, "v": rng.standard_normal(5)}
    _, grads = m.value_and_grad(**inputs)
    np.testing.assert_array_equal(grads["Y"], np.zeros((4, 5)))
    np.testing.assert_array_equal(np.shape(grads["v"]), (5,))
    assert np.all(grads["v"] == 0) and grads["z"] == 0
    np.testing.assert_allclose(grads["X"], 2 * inputs["X"])
    _check_all_seeds(p)


def test_function_that_cancels_has_zero_gradient():
    p = matcalc.problem("X - X", X="N x D")
    assert _is_symbolic_zero(matcalc.grad(p)["X"])
    value, _ = matcalc.compile(p).forward(np.ones((2, 3)))
    np.testing.assert_array_equal(value, np.zeros((2, 3)))
    _check_all_seeds(p)


# ------------------------------------------------------- the check itself ---

def test_check_reports_a_wrong_gradient():
    p = matcalc.problem("sum(X ** 2)", X="N x D")
    good = matcalc.compile(p)

    def backward(cache, dout=None):
        (dX,) = good.backward(cache, dout)
        return (1.01 * dX,)

    wrong = types.SimpleNamespace(forward=good.forward, backward=backward)
    result = verify_check(p, module=wrong)
    assert not result.ok and not bool(result)
    assert result.errors["X"] > 1e-3
    assert "MISMATCH" in str(result)
    assert verify_check(p, module=good).ok


def test_check_uses_given_dims_and_inputs():
    p = matcalc.problem("sum(log(x) * y)", x="N", y="N")
    result = matcalc.check(p, dims={"N": 2}, seed=5)
    assert result.ok and result.dims == {"N": 2}
    x = np.array([2.0, 3.0])
    result = matcalc.check(p, dims={"N": 2}, inputs={"x": x, "y": np.array([1.0, -1.0])})
    assert result.ok
    assert result.value == pytest.approx(np.log(2.0) - np.log(3.0))


def test_examples_check():
    from conftest import EXAMPLES
    for path in sorted(EXAMPLES.glob("*.mc")):
        p = matcalc.parse(path.read_text("utf-8"), str(path))
        result = matcalc.check(p)
        assert result.ok, f"{path.name}:\n{result}"


@pytest.mark.parametrize("expr, shapes", [
    ("X + X / N", {"X": "N x D"}),              # coefficient 1 + 1/N
    ("X - X / D", {"X": "N x D"}),              # coefficient 1 - 1/D
    ("(N + 1) * X", {"X": "N x D"}),
    ("sum(x) * N + mean(x)", {"x": "N"}),
    ("x ** (N + 1)", {"x": "N"}),
])
def test_coefficients_that_are_sums_of_dimensions(expr, shapes):
    _check_all_seeds(matcalc.problem(expr, **shapes))


@pytest.mark.parametrize("expr, symmetric", [
    ("A @ S @ A.T", True),                    # A B Aᵀ, B symmetric
    ("A @ B @ A.T", False),                   # B not symmetric
    ("A.T @ S @ S @ A", True),                # Aᵀ S S A: the S pair, as S = Sᵀ
    ("A.T @ S @ B @ A", False),
    ("(A @ S) @ (A @ S).T", True),            # (AS)(AS)ᵀ, any grouping
    ("inv(S) @ C @ inv(S)", True),
    ("solve(S, C) @ inv(S)", True),           # S⁻¹ C S⁻¹ written with a solve
    ("solve(S, B) @ inv(S)", False),
    ("A.T @ A", True),
    ("A @ A", False),
])
def test_symmetry_of_product_chains(expr, symmetric):
    p = matcalc.problem(expr, A="N x N", B="N x N", S="N x N symmetric", C="N x N symmetric")
    assert ops.is_symmetric(p.output) is symmetric
    if symmetric:  # the claim, checked on numbers
        from matcalc.checks.verify import evaluate
        dims = sizes(p, {"N": 4})
        value = evaluate(p.output, {**draw(p, dims, np.random.default_rng(0)), **dims})
        np.testing.assert_allclose(value, value.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("expr, symmetric", [
    ("q[:, None] + q[None, :] - 2 * X @ X.T", True),   # squared distances
    ("exp(-(q[:, None] + q[None, :] - 2 * X @ X.T) / 2) + 0.1 * eye(N)", True),  # an RBF kernel
    ("q + q[:, None]", True),                             # a vector term broadcasts along rows
    ("q + 2 * q[:, None]", False),
    ("outer(q, r) + outer(r, q)", True),
    ("outer(q, r) - outer(r, q)", False),
    ("A + A.T + S", True),
    ("A + 2 * A.T", False),
    ("X.T @ (q[:, None] * X)", True),                    # Xᵀ diag(q) X
    ("(A * q) @ S @ (A * q).T", True),                     # A diag(q) S diag(q) Aᵀ
    ("A.T @ (q[:, None] * S)", False),
    ("kron(S, C)", True),
    ("kron(S, A)", False),
    ("unkron_left(kron(S, C) + kron(C, S), C)", True),
    ("unkron_right(kron(S, C) + kron(C, S), S)", True),
    ("unkron_left(kron(A, C), C)", False),
])
def test_symmetry_of_sums_and_kronecker_products(expr, symmetric):
    """A sum whose terms are their own transposes as a multiset, and ⊗ and
    its adjoints of symmetric matrices, are symmetric."""
    p = matcalc.problem(expr, A="N x N", S="N x N symmetric", C="N x N symmetric",
                        X="N x D", q="N", r="N")
    assert ops.is_symmetric(p.output) is symmetric
    from matcalc.checks.verify import evaluate
    dims = sizes(p, {"N": 3, "D": 2})
    value = evaluate(p.output, {**draw(p, dims, np.random.default_rng(0)), **dims})
    assert np.allclose(value, value.T, rtol=1e-12, atol=1e-12) is symmetric


def test_symmetry_is_read_through_scalars_and_marks():
    """Aᵀ (A / 2) and Aᵀ mark(2 S) mark(A) are symmetric: scalars commute out
    of a chain, and marks and names are their values (the reverse pass
    builds such chains, before any simplification)."""
    n = sympy.Symbol("N", positive=True, integer=True)
    A, S = var("A", (n, n)), var("S", (n, n), structure="symmetric")
    half = apply(ops.OPS["mul"], (const(0.5), A))

    def mark(x):
        return apply(ops.OPS["adjoint"], (x,))

    def chain(*fs):
        return fs[0] if len(fs) == 1 else apply(ops.OPS["matmul"], (chain(*fs[:-1]), fs[-1]))

    At = apply(ops.OPS["transpose"], (A,))
    assert ops.is_symmetric(chain(At, mark(half)))
    assert ops.is_symmetric(chain(At, mark(apply(ops.OPS["mul"], (const(2), S))), mark(A)))
    assert ops.is_symmetric(chain(At, apply(ops.OPS["div"], (S, const(3))), A))
    assert not ops.is_symmetric(chain(At, mark(half), S))
    assert not ops.is_symmetric(chain(At, mark(half), mark(A)))


@pytest.mark.parametrize("expr, want", [
    ("solve(A, eye(N) / 2)", "inv(A) / 2"),
    ("solve(A, 3 * B)", "3 * solve(A, B)"),
    ("solve(A, eye(N))", "inv(A)"),
])
def test_solve_takes_scalars_out(expr, want):
    shapes = {"A": "N x N", "B": "N x K"}
    assert str(matcalc.problem(expr, **shapes).output) == \
        str(matcalc.problem(want, **shapes).output)
    _check_all_seeds(matcalc.problem(f"sum(sin({expr}))", **shapes))


def test_regression_column_times_identity_is_diag_in_either_order():
    # a[:, None] * I = diag(a) whatever the order of the factors and with a
    # broadcast ones among them (as the sum and mul rules build it)
    p = matcalc.problem("sum(v)", v="N")
    v = p.variables["v"]
    n = v.shape[0]
    diag_v = ops.diag(v)
    assert p.expr("v[:, None] * eye(N)") is diag_v
    assert p.expr("eye(N) * v[:, None]") is diag_v
    for row in ("v[None, :] * eye(N)", "eye(N) * v[None, :]", "v * eye(N)", "eye(N) * v"):
        assert p.expr(row) is diag_v  # a row (or a broadcast vector) times I, too
    assert ops.mul(ops.mul(ops.ones((n, n)), ops.col(v)), ops.eye(n)) is diag_v
    assert ops.mul(const(3), ops.eye(n), ops.col(v)) is ops.mul(const(3), diag_v)


def test_regression_forward_rules_build_through_the_builders():
    # the forward (jvp) rules built log, exp, diag, kron and solve with `func`,
    # skipping each builder's algebra: d(exp(X) ** z) had log(exp(X)), which
    # prints as text that parses back as X
    p = matcalc.problem("sum(exp(X) ** z)", X="N x N", z="scalar")
    X, z = p.variables["X"], p.variables["z"]
    node = ops.power(ops.exp(X), z)
    d = ops.OPS["pow"].jvp(node, (None, z))
    assert ops.func("log", ops.exp(X)) not in set(postorder([d]))
    assert X in set(postorder([d]))
    v = p.expr("diag(X)")
    assert ops.OPS["diag"].jvp(ops.diag(X), (ops.eye(X.shape[0]),)) is ops.ones((X.shape[0],))
    assert ops.OPS["diagm"].jvp(ops.diag(v), (ops.mul(const(2), ops.ones(v.shape)),)) \
        is ops.mul(const(2), ops.eye(X.shape[0]))


def test_regression_equal_constants_in_dimensions_are_one_node():
    # -(N**2 + 1)/K and (-1 - N**2)/K are equal but different SymPy trees;
    # const() gives both one normal form, so printing and parsing agree
    p = matcalc.problem("sum(u)", u="K", B="N x N")
    n, k = p.dims["N"], p.dims["K"]
    assert const(-(n ** 2 + 1) / k) is const((-1 - n ** 2) / k)
    assert const((n + 1) ** 2) is const(n ** 2 + 2 * n + 1)
    assert p.expr("(-1 - N ** 2) / K * u") is ops.mul(const(-(n ** 2 + 1) / k), p.variables["u"])


def test_a_quotient_of_a_node_by_itself_is_one():
    # the derivative of expm1(log(x)) is exp(log(x)) / x = x / x
    p = matcalc.problem("sum(expm1(log(x)))", x="N")
    assert p.expr("x / x") is ops.ones(p.variables["x"].shape)
    assert str(matcalc.grad(p)["x"]) == "ones(N)"
    _check_all_seeds(p)


def test_a_sum_broadcast_inside_a_sum_is_flattened():
    """1 ⊙ (1 + x) − s, the ones dropped, is one flat sum 1 + x − s, so the
    gradient parses back to itself
    (found by the round-trip property after the broadcast ones were dropped)."""
    p = matcalc.parse("W: N x N\nloss = norm(sum(exp(W - logsumexp(W)), axis=0))"
                      " + sum(exp(W - logsumexp(W)))\n")
    g = matcalc.grad(p)["W"]
    assert p.expr(str(g)) is g
