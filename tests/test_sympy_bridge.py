"""matcalc <-> SymPy: `to_sympy` and `from_sympy` (matcalc/bridges/).

Round trips come back as the same interned node where the two languages
have one form for the expression, and as an equal value where SymPy has no
separate form (each such case says why). Values of the SymPy expressions are
computed without matcalc (tests/sympy_numeric.py walks SymPy's tree with
NumPy; SymPy's own `lambdify` where its NumPy printer knows every node) and
compared with matcalc's generated `forward` at the same inputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from sympy import MatrixSymbol, Trace
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

import matcalc
from matcalc import MatcalcError, ops
from matcalc.bridges.sympy import from_sympy, to_sympy
from matcalc.ir.expr import const

from sympy_numeric import evaluate

P = matcalc.parse("""
X: N x D
A: N x N
B: D x D
W: D x K
S: N x N symmetric
x, y: N
w: D
b: D
c, a: scalar
f = sum(X)
""")
SCOPE = P.scope()
DIMS = {"N": 3, "D": 4, "K": 2}

# Expressions whose round trip gives back the very node.
SAME = [
    "A @ X", "X.T @ A @ X", "x @ A @ x", "x @ A", "A @ x", "x @ y", "X @ W", "(A @ A).T",
    "X + b", "X + c", "c * X", "X * X", "1 / X", "X ** 3", "x ** 2", "c ** 2 + a / c",
    "X / (x @ y)", "(x @ y) * X", "c * (x @ A @ x) + trace(A)", "1 - tanh(X) ** 2",
    "exp(X)", "sigmoid(x)", "relu(X)", "softplus(x)", "step(x)", "log1p(x)", "expm1(x)",
    "arcsin(x)", "square(x)", "minimum(X, 2)", "exp(c)", "sqrt(c)", "c ** 0.5",
    "sum(X)", "sum(X, axis=0)", "sum(X, axis=1)", "sum(x)", "sum((X @ w - y) ** 2)",
    "trace(A)", "det(A)", "logdet(A)", "inv(A)", "det(A) * inv(A).T", "logdet(X.T @ X)",
    "outer(x, y)", "kron(A, B)", "diag(x)", "diag(A)", "norm(X)", "norm(x - y)",
    "eye(N)", "ones(N, D)", "zeros(N)", "trace(S @ A)", "S @ x",
    "x @ A @ x + c * sin(y) @ x", "X / X", "sum(log(1 + exp(-y * (X @ w))))",
    "softmax(x)", "softmax(X, axis=0)",   # exp(x) ⊙ (1 / 1ᵀexp(x)) reads back as a softmax
]

# Expressions that come back equal in value but as another node, and why.
EQUAL = {
    "log(det(A))": "SymPy writes log(det A) and logdet(A) alike; it reads back as logdet(A)",
    "solve(A, X)": "SymPy writes solve(A, X) as A⁻¹X; it reads back as inv(A) @ X",
    "norm1(x)": "SymPy has no 1-norm of a matrix expression; written 1ᵀ|x|",
    "logsumexp(x)": "written out as log(1ᵀ exp(x))",
    "logsumexp(X, axis=1)": "written out as log(exp(X) 1)",
    "logsumexp(X, axis=0)": "written out as log(exp(X)ᵀ 1)",
    "softmax(X, axis=1)": "written out with OneMatrix",
    "x[:, None]": "SymPy's vectors are already n x 1 columns: it reads back as x",
    "x[None, :]": "a row is xᵀ in SymPy: it reads back as the vector x",
    "maximum(x, 0)": "the same SymPy function as relu(x): it reads back as relu(x)",
}


def inputs(seed: int = 0) -> dict:
    """Inputs inside every domain used here: (0.2, 0.8) entries, A positive definite."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, v in P.variables.items():
        shape = tuple(DIMS[str(d)] for d in v.shape)
        values[name] = rng.uniform(0.2, 0.8, shape) if shape else float(rng.uniform(0.2, 0.8))
    m = rng.standard_normal((3, 3))
    values["A"] = m @ m.T / 3 + np.eye(3)
    values["S"] = (values["S"] + values["S"].T) / 2
    return values


def matcalc_value(expr, values: dict):
    """The value of a matcalc expression by matcalc's generated code."""
    decls = "\n".join(f"{n}: {' x '.join(map(str, v.shape)) or 'scalar'}"
                      + (f" {v.structure}" if v.structure else "")
                      for n, v in P.variables.items())
    q = matcalc.parse(f"{decls}\ng = {expr}")
    return np.asarray(matcalc.compile(q).forward(*(values[n] for n in P.variables))[0],
                      dtype=float)


def sympy_value(sexpr, values: dict):
    return np.asarray(evaluate(sexpr, values, DIMS), dtype=float)


def assert_same_value(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.size == b.size, (a.shape, b.shape)
    np.testing.assert_allclose(a.reshape(b.shape), b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("text", SAME)
def test_round_trip_is_the_same_node(text):
    e = P.expr(text)
    assert from_sympy(to_sympy(e), SCOPE) is e, (text, to_sympy(e))


@pytest.mark.parametrize("text", sorted(EQUAL))
def test_round_trip_equal_in_value(text):
    e = P.expr(text)
    back = from_sympy(to_sympy(e), SCOPE)
    assert back is not e, f"{text} now round-trips exactly: move it to SAME"
    for seed in (0, 1):
        values = inputs(seed)
        assert_same_value(matcalc_value(back, values), matcalc_value(e, values))


@pytest.mark.parametrize("text", SAME + sorted(EQUAL))
def test_sympy_value_matches_matcalc(text):
    """The SymPy expression computes what matcalc's code computes."""
    e = P.expr(text)
    values = inputs()
    assert_same_value(sympy_value(to_sympy(e), values), matcalc_value(e, values))


@pytest.mark.parametrize("text", ["A @ X + X", "inv(A) @ X @ W", "kron(A, B)", "outer(x, y)",
                                  "X.T @ A @ X", "x @ A @ x", "A.T @ x - y", "eye(N) + A"])
def test_sympy_lambdify_matches_matcalc(text):
    """SymPy's own NumPy code for the expression agrees with matcalc's."""
    e = P.expr(text)
    dims = {P.dims[k]: v for k, v in DIMS.items()}
    s = to_sympy(e).subs(dims)
    symbols = sorted(s.atoms(MatrixSymbol), key=lambda m: m.name)
    f = sympy.lambdify(symbols, s, "numpy")
    values = inputs()
    args = [np.asarray(values[m.name]).reshape(m.shape) for m in symbols]
    assert_same_value(f(*args), matcalc_value(e, values))


# ------------------------------------------------------ the SymPy forms ---

def test_variables_become_symbols_over_the_problems_dimensions():
    N, D = P.dims["N"], P.dims["D"]
    assert to_sympy(P.variables["X"]) == MatrixSymbol("X", N, D)
    assert to_sympy(P.variables["x"]) == MatrixSymbol("x", N, 1)
    assert to_sympy(P.variables["c"]) == sympy.Symbol("c", real=True)
    assert to_sympy(P.expr("x @ A @ x")) == MatrixSymbol("x", N, 1).T * \
        MatrixSymbol("A", N, N) * MatrixSymbol("x", N, 1)
    assert to_sympy(P.expr("trace(A) + c")) == Trace(MatrixSymbol("A", N, N)) + \
        sympy.Symbol("c", real=True)


def test_matcalc_gradients_read_as_sympy_writes_them():
    p = matcalc.problem("trace(A @ X @ B)", A="K x N", X="N x M", B="M x K", wrt="X")
    g = to_sympy(matcalc.grad(p)["X"])
    A = MatrixSymbol("A", p.dims["K"], p.dims["N"])
    B = MatrixSymbol("B", p.dims["M"], p.dims["K"])
    assert g == A.T * B.T
    p = matcalc.problem("logdet(X)", X="N x N", wrt="X")
    X = MatrixSymbol("X", p.dims["N"], p.dims["N"])
    assert to_sympy(matcalc.grad(p)["X"]) == sympy.Transpose(sympy.Inverse(X))


@pytest.mark.parametrize("f, wrt, shapes, sympy_says", [
    ("x @ A @ x", "x", {"x": "N", "A": "N x N"}, "A @ x + A.T @ x"),
    ("trace(A @ X @ B)", "X", {"A": "N x N", "X": "N x N", "B": "N x N"}, "A.T @ B.T"),
    ("a @ inv(X) @ b", "X", {"a": "N", "X": "N x N", "b": "N"}, None),
    ("trace(inv(X))", "X", {"X": "N x N"}, None),
    # SymPy orders the terms -b + A x: equal in value only, until matcalc orders sums
    ("(A @ x - b) @ (A @ x - b)", "x", {"A": "M x N", "x": "N", "b": "M"}, None),
])
def test_sympy_derivatives_come_back_into_matcalc(f, wrt, shapes, sympy_says):
    """SymPy's answer, read with from_sympy, equals matcalc's gradient."""
    p = matcalc.problem(f, wrt=wrt, **shapes)
    d = to_sympy(p.output).diff(to_sympy(p.variables[wrt]))
    back = from_sympy(d, p.scope())
    if sympy_says is not None:
        assert back is p.expr(sympy_says), back
    mine = matcalc.grad(p)[wrt]
    from matcalc.checks import verify
    dims = verify.sizes(p)
    values = verify.draw(p, dims, np.random.default_rng(0))
    decls = "\n".join(f"{n}: {' x '.join(map(str, v.shape))}" for n, v in p.variables.items())

    def value(e):
        q = matcalc.parse(f"{decls}\ng = {e}")
        return matcalc.compile(q).forward(*(values[n] for n in p.variables))[0]
    assert_same_value(value(back), value(mine))


# ---------------------------------------------------------------- errors ---

def test_what_sympy_cannot_represent_is_a_matcalc_error():
    with pytest.raises(MatcalcError, match="maximum of two arrays"):
        to_sympy(P.expr("maximum(x, y)"))
    with pytest.raises(MatcalcError, match="array exponent"):
        to_sympy(P.expr("c ** x"))
    p = matcalc.problem("sum(sin(kron(A, X)))", A="M x M", X="N x N", wrt="X")
    with pytest.raises(MatcalcError, match="unkron"):
        to_sympy(matcalc.grad(p)["X"])
    with pytest.raises(MatcalcError, match="expects a matcalc expression"):
        to_sympy("X")


def test_from_sympy_errors():
    N = P.dims["N"]
    with pytest.raises(MatcalcError, match="'Z' is not a name"):
        from_sympy(MatrixSymbol("Z", N, N), SCOPE)
    with pytest.raises(MatcalcError, match="cannot read"):
        from_sympy(sympy.Integral(sympy.Symbol("c", real=True)), SCOPE)
    with pytest.raises(MatcalcError, match="is 3 x 3 in SymPy"):
        from_sympy(MatrixSymbol("X", 3, 3), SCOPE)


def test_named_intermediates_are_written_out():
    p = matcalc.parse("X: N x D\nw: D\nZ = X @ w\nf = sum(exp(Z))")
    s = to_sympy(p.output)
    assert "Z" not in {m.name for m in s.atoms(MatrixSymbol)}
    back = from_sympy(s, p.scope())
    assert back is p.expr("sum(exp(X @ w))")
    assert ops.OPS  # the table the bridge walks


@pytest.mark.parametrize("name", sorted(n for n, op in ops.OPS.items() if op.elementwise))
def test_every_elementwise_operator_of_the_table_round_trips(name):
    """The SymPy forms come from the table: no elementwise operator lacks one."""
    for arg in (P.variables["x"], P.variables["X"]):
        e = ops.func(name, arg)
        assert from_sympy(to_sympy(e), SCOPE) is e, (name, to_sympy(e))


# ------------------------------------------- an operator registered at run time ---

DECLS = "\n".join(f"{n}: {' x '.join(map(str, v.shape)) or 'scalar'}"
                  + (f" {v.structure}" if v.structure else "") for n, v in P.variables.items())


@pytest.fixture
def registered():
    """Two elementwise operators added at run time, removed again afterwards:
    cbrt, which SymPy has (`sympy.cbrt(u) = u**(1/3)`), d cbrt(x) = dx / (3 cbrt(x)²);
    lg (log base 2), which SymPy has not (an undefined `sympy.Function`),
    d lg(x) = dx / (x log 2)."""
    added = [ops.elementwise("cbrt", lambda g, x, y: ops.div(g, ops.mul(const(3), ops.power(
                 y, const(2)))), domain="positive"),
             ops.elementwise("lg", lambda g, x, y: ops.div(g, ops.mul(const(sympy.log(2)), x)),
                             domain="positive")]
    yield
    for op in added:
        del ops.OPS[op.name]


REGISTERED = ["cbrt(X)", "sum(cbrt(x))", "y @ cbrt(X @ w)", "exp(cbrt(X)) + X", "cbrt(x) @ A",
              "lg(X)", "sum(lg(x) * y)", "sigmoid(lg(X @ w))", "lg(c) + cbrt(X @ w) @ y"]


@pytest.mark.parametrize("text", REGISTERED)
def test_an_operator_registered_at_run_time_round_trips(registered, text):
    e = P.expr(text)
    assert from_sympy(to_sympy(e), SCOPE) is e, (text, to_sympy(e))


def test_an_operator_registered_at_run_time_has_its_sympy_function(registered):
    u = sympy.Dummy("u")
    c = sympy.Symbol("c", real=True)
    written = to_sympy(P.expr("cbrt(X)"))
    assert isinstance(written, ElementwiseApplyFunction)
    assert written.function(u) == sympy.cbrt(u)
    assert to_sympy(P.expr("lg(c)")) == sympy.Function("lg")(c)
    values = inputs()
    for text in ("cbrt(X)", "y @ cbrt(X @ w)", "exp(cbrt(X)) + X"):
        e = P.expr(text)
        assert_same_value(sympy_value(to_sympy(e), values), matcalc_value(e, values))


@pytest.mark.parametrize("f, wrt", [("sum(cbrt(X))", "X"), ("y @ cbrt(X @ w)", "w"),
                                    ("sum(cbrt(X @ w))", "X")])
def test_an_operator_registered_at_run_time_differentiates_as_sympy_does(registered, f, wrt):
    """matcalc's gradient through the new operator agrees with finite
    differences and with SymPy's derivative of `to_sympy` of the function."""
    p = matcalc.parse(f"{DECLS}\nf = {f}\nwrt {wrt}")
    d = to_sympy(p.output).diff(to_sympy(p.variables[wrt]))
    mine = matcalc.grad(p)[wrt]
    forward = matcalc.compile(p).forward
    for seed in (0, 1):
        values = inputs(seed)
        gradient = matcalc_value(mine, values)
        np.testing.assert_allclose(gradient, central_differences(forward, values, wrt),
                                   rtol=1e-6, atol=1e-8)
        assert_same_value(sympy_value(d, values), gradient)


def central_differences(forward, values: dict, wrt: str, eps: float = 1e-6) -> np.ndarray:
    """(f(x + eps eᵢ) - f(x - eps eᵢ)) / 2 eps for each entry i of `wrt`."""
    x = np.asarray(values[wrt], dtype=float)
    out = np.empty_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        up, down = ({**values, wrt: x + sign * step} for sign in (1, -1))
        out[i] = (forward(*(up[n] for n in P.variables))[0]
                  - forward(*(down[n] for n in P.variables))[0]) / (2 * eps)
    return out
