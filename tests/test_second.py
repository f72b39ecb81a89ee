"""Hessians, Hessian-vector products and Jacobians, checked against finite
differences of the generated gradient (or function)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import matcalc
from matcalc.checks.verify import draw, sizes

EPS = 1e-6


def _inputs(problem, seed=0):
    rng = np.random.default_rng(seed)
    return draw(problem, sizes(problem), rng), rng


def _fd_columns(f, values, name):
    """∂f/∂values[name] by central differences: f's shape, then name's."""
    x = np.asarray(values[name], dtype=float)
    out = None
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = EPS * max(1.0, abs(x[index]))
        up = np.asarray(f({**values, name: x + step if x.ndim else float(x + step)}))
        down = np.asarray(f({**values, name: x - step if x.ndim else float(x - step)}))
        column = (up - down) / (2 * step[index])
        if out is None:
            out = np.empty(column.shape + x.shape)
        out[(...,) + index] = column
    return out


def _gradient(module, problem, by):
    def f(values):
        _, grads = module.value_and_grad(**values)
        return grads[by]
    return f


HESSIANS = [
    ("sum(softplus(-y * (X @ w)))", {"X": "N x D", "y": "N", "w": "D"}, "w", "matrix"),
    ("sum((A @ x - b) ** 2)", {"A": "M x N", "x": "N", "b": "M"}, "x", "matrix"),
    ("x @ A @ x + sum(exp(x))", {"A": "N x N", "x": "N"}, "x", "matrix"),
    ("norm(x) + logsumexp(x)", {"x": "N"}, "x", "matrix"),
    ("a ** 3 * b + sin(a * b)", {"a": "scalar", "b": "scalar"}, "a", "scalar"),
    ("a ** 3 * b + sin(a * b)", {"a": "scalar", "b": "scalar"}, "a,b", "scalar"),
    ("sum(tanh(W @ x) * y)", {"W": "M x N", "x": "N", "y": "M"}, "x", "matrix"),
    ("sum(tanh(W @ x) * y)", {"W": "M x N", "x": "N", "y": "M"}, "W,x", "operator"),
    ("trace(X.T @ A @ X)", {"X": "N x K", "A": "N x N"}, "X", "kron"),
    ("sum((X - U @ V.T) ** 2)", {"X": "M x N", "U": "M x K", "V": "N x K"}, "U", "kron"),
    ("sum(exp(X)) + trace(X.T @ A @ X)", {"X": "N x K", "A": "N x N"}, "X", "operator"),
    ("logdet(S) + trace(solve(S, C))", {"S": "D x D", "C": "D x D"}, "S", "operator"),
    ("sum(sigmoid(X @ w))", {"X": "N x D", "w": "D"}, "w", "matrix"),
    ("sum(sigmoid(w @ X.T)) + sum(exp(w @ X.T))", {"X": "N x D", "w": "D"}, "w", "matrix"),
    ("s * sum(Y @ c)", {"Y": "N x D", "c": "D", "s": "scalar"}, "s,Y", "operator"),
    ("sum(y * softplus(X @ w - b))", {"X": "N x D", "y": "N", "w": "D", "b": "N"}, "w", "matrix"),
    ("sum(y * softplus(X @ w - b))", {"X": "N x D", "y": "N", "w": "D", "b": "N"}, "w,b",
     "matrix"),
    # through where, cumsum and solve: diag(where(k, 2, 6 x)), L-shaped sums, A⁻ᵀ A⁻¹
    ("sum(where(x > 0, x ** 2, x ** 3))", {"x": "N"}, "x", "matrix"),
    ("sum(cumsum(x) ** 2)", {"x": "N"}, "x", "matrix"),
    ("sum(solve(A, x) ** 2)", {"A": "N x N", "x": "N"}, "x", "matrix"),
]


@pytest.mark.parametrize("expr, shapes, wrt, form", HESSIANS, ids=[f"{e}/{w}" for e, _, w, _ in HESSIANS])
def test_hessian_against_differences_of_the_gradient(expr, shapes, wrt, form):
    x, y = (wrt.split(",") * 2)[:2]
    problem = matcalc.problem(expr, **shapes)
    result = matcalc.hessian(problem, wrt)
    assert result.entries[0].form == form
    module = matcalc.compile(problem, hessian=wrt)
    values, _ = _inputs(problem)
    got = np.asarray(module.hessian(**values))
    expected = _fd_columns(_gradient(module, problem, x), values, y)
    assert got.shape == np.shape(values[x]) + np.shape(values[y])  # whatever the form
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


SYMMETRIC_HESSIANS = [
    "X: N x D\nmu: D\nS: D x D spd\nR = X - mu\n"
    "nll = N / 2 * logdet(S) + trace(R @ inv(S) @ R.T) / 2\nwrt S",
    "X: N x D\nS: D x D symmetric\nf = sum((X @ S) ** 2)\nwrt S",
    "S: D x D spd\nf = logdet(S)",
]


@pytest.mark.parametrize("text", SYMMETRIC_HESSIANS)
def test_hessian_by_a_symmetric_matrix_is_symmetric(text):
    """The derivatives by a symmetric S act on symmetric directions, (v +
    vᵀ)/2: the full Hessian H[i, j, m, n] is symmetric in each index pair
    and as a bilinear form (it was not: the gradient's formula read off
    along E_mn, a direction S cannot take), its action on a symmetric V is
    the differences of the gradient along V, and the HVP of v is that of vᵀ."""
    problem = matcalc.parse(text)
    module = matcalc.compile(problem, hessian=True, hvp=True)
    values, rng = _inputs(problem)
    d = values["S"].shape[0]
    h = np.asarray(module.hessian(**values)).reshape(d, d, d, d)
    for axes in ((1, 0, 2, 3), (0, 1, 3, 2), (2, 3, 0, 1)):
        np.testing.assert_allclose(h, h.transpose(axes), atol=1e-12)
    v = rng.standard_normal((d, d))
    sym = (v + v.T) / 2
    gradient = _gradient(module, problem, "S")
    fd = (gradient({**values, "S": values["S"] + EPS * sym})
          - gradient({**values, "S": values["S"] - EPS * sym})) / (2 * EPS)
    np.testing.assert_allclose(np.tensordot(h, sym, 2), fd, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(module.hvp(v, **values), np.tensordot(h, v, 2), atol=1e-12)
    np.testing.assert_allclose(module.hvp(v.T, **values), module.hvp(v, **values), atol=1e-12)


def test_logistic_hessian_is_the_textbook_closed_form():
    p = matcalc.parse(open("examples/logistic.mc").read())   # y: N sign, so y ** 2 = 1
    text = str(matcalc.hessian(p, "w"))
    assert "H_w = X.T @ ((g0 * (1 - g0))[:, None] * X)" in text
    any_y = matcalc.parse(open("examples/logistic.mc").read().replace("y: N sign", "y: N"))
    any_y_text = str(matcalc.hessian(any_y, "w"))
    assert "H_w = X.T @ ((y ** 2 * g0 * (1 - g0))[:, None] * X)" in any_y_text
    assert "g0 = sigmoid(t0)" in text
    assert r"\operatorname{diag}" in matcalc.hessian(p, "w").latex()


def _hessian_source(module) -> str:
    return module.source[module.source.index("def hessian"):]


def test_logistic_hessian_code_computes_the_slope_from_one_exp():
    """σ(t) (1 − σ(t)) is printed, and computed as e / (1 + e)², e = exp(−|t|),
    where σ(t) is needed nowhere else; σ' is even, so t's sign is dropped,
    and so is the factor y, declared `sign` (|y t| = |t|)."""
    code = _hessian_source(matcalc.compile(open("examples/logistic.mc").read(), hessian="w"))
    assert "g0 = np.exp(-np.abs(t0))" in code
    any_y = open("examples/logistic.mc").read().replace("y: N sign", "y: N")
    assert "g0 = np.exp(-np.abs(y * t0))" in _hessian_source(matcalc.compile(any_y, hessian="w"))
    assert "(g0 / (1.0 + g0) ** 2)" in code
    assert "_sigmoid" not in code
    sigmoid_twice = matcalc.compile(matcalc.problem("sum(sigmoid(X @ w))", X="N x D", w="D"),
                                    hessian="w")
    assert "_sigmoid(X @ w)" in _hessian_source(sigmoid_twice)  # σ is the function itself
    assert "np.abs" not in _hessian_source(sigmoid_twice)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_logistic_hessian_is_exact_in_the_tails(dtype, rtol):
    """At margins of 40 and more, 1 − σ(t) rounds to 0; the Hessian and the
    Hessian-vector product keep their full relative precision."""
    import mpmath
    module = matcalc.compile(open("examples/logistic.mc").read(), hessian="w", hvp=True)
    X = np.array([[40.0, 1.0], [-60.0, 2.0], [80.0, -1.0]], dtype)
    y = np.array([1.0, -1.0, 1.0], dtype)
    w = np.array([1.0, 0.0], dtype)
    slope = [float(mpmath.exp(-abs(m)) / (1 + mpmath.exp(-abs(m))) ** 2)
             for m in y.astype(float) * (X.astype(float) @ w.astype(float))]
    expected = (X.astype(float).T * slope) @ X.astype(float)
    got = module.hessian(X=X, y=y, w=w)
    assert got.dtype == dtype and np.all(got != 0)
    np.testing.assert_allclose(got, expected, rtol=rtol)
    v = np.array([0.5, -2.0], dtype)
    np.testing.assert_allclose(module.hvp(v, X=X, y=y, w=w), expected @ v, rtol=rtol)


def test_broadcast_products_with_one_factor_are_merged():
    """a[:, None] * X + b[:, None] * X is written (a + b)[:, None] * X: one
    n x d product, not two and their sum."""
    p = matcalc.problem("sum(sigmoid(X @ w))", X="N x D", w="D")
    lines = str(matcalc.hessian(p, "w")).splitlines()
    assert "H_w = X.T @ ((t0 * g0 ** 2 - t0 ** 2 * g0)[:, None] * X)" in lines
    rows = matcalc.problem("sum(sigmoid(w @ X.T)) + sum(exp(w @ X.T))", X="N x D", w="D")
    assert str(matcalc.hessian(rows, "w")).count("[:, None] * X") == 1


def test_hvp_takes_an_input_named_v():
    problem = matcalc.problem("sum(exp(A @ v))", A="N x N", v="N")
    module = matcalc.compile(problem, hvp=True, hessian="v")
    A, v = np.diag([0.5, -1.0, 2.0]), np.array([0.3, 0.1, -0.2])
    direction = {"A": np.zeros((3, 3)), "v": np.array([1.0, 2.0, 3.0])}
    got = module.hvp(direction, A=A, v=v)["v"]
    np.testing.assert_allclose(got, module.hessian(A=A, v=v) @ direction["v"], rtol=1e-12)


def test_quadratic_form_hessian_is_a_kronecker_product():
    p = matcalc.problem("trace(X.T @ A @ X)", X="N x K", A="N x N")
    assert "H_X = kron(eye(K), A.T + A)" in str(matcalc.hessian(p, "X"))


HVPS = [
    ("sum(softplus(-y * (X @ w)))", {"X": "N x D", "y": "N", "w": "D"}, "w"),
    ("sum(tanh(W @ x + b) ** 2) + x @ x", {"W": "M x N", "x": "N", "b": "M"}, "W,x,b"),
    ("logdet(S) + trace(solve(S, C))", {"S": "D x D", "C": "D x D"}, "S"),
    ("sum(y * softplus(X @ w - b))", {"X": "N x D", "y": "N", "w": "D", "b": "N"}, "w,b"),
]


@pytest.mark.parametrize("expr, shapes, wrt", HVPS, ids=[e for e, _, _ in HVPS])
def test_hvp_is_the_derivative_of_the_gradient_along_v(expr, shapes, wrt):
    problem = matcalc.problem(expr, wrt=wrt, **shapes)
    module = matcalc.compile(problem, hvp=True)
    values, rng = _inputs(problem, 1)
    names = wrt.split(",")
    v = {n: rng.standard_normal(np.shape(values[n])) for n in names}
    got = module.hvp(v if len(names) > 1 else v[names[0]], **values)
    got = got if len(names) > 1 else {names[0]: got}

    def grads_at(t):
        moved = {**values, **{n: values[n] + t * v[n] for n in names}}
        return module.value_and_grad(**moved)[1]
    up, down = grads_at(EPS), grads_at(-EPS)
    for n in names:
        np.testing.assert_allclose(got[n], (up[n] - down[n]) / (2 * EPS), rtol=1e-5, atol=1e-6)


JACOBIANS = [
    ("softmax(x)", {"x": "N"}, "x", "J_x = diag(f) - outer(f, f)"),
    ("A @ x", {"A": "M x N", "x": "N"}, "x", "J_x = A"),
    ("sigmoid(X @ w)", {"X": "N x D", "w": "D"}, "w", "J_w = (f * (1 - f))[:, None] * X"),
    ("A @ x", {"A": "M x N", "x": "N"}, "A", None),
    ("X @ W", {"X": "N x D", "W": "D x H"}, "W", "J_W = kron(eye(H), X)"),
    ("exp(x) * y + c", {"x": "N", "y": "N", "c": "scalar"}, "c", None),
    # raised ShapeError: a broadcast matrix term in the direction
    ("z @ (z[:, None] + v @ y)", {"z": "K", "v": "N", "y": "N x N"}, "v", None),
    # the Jacobian by a variable the function ignores: np.zeros of the full shape
    ("sigmoid(w[:, None] + c)", {"w": "M", "c": "N", "u": "K"}, "u", None),
    ("sum(Y @ c)", {"Y": "N x D", "c": "D"}, "Y", None),  # raised ShapeError
    ("solve(A, b)", {"A": "N x N", "b": "N"}, "b", "inv(A)"),
    ("cumsum(x)", {"x": "N"}, "x", "J_x = cumsum(eye(N), axis=0)"),
    ("where(x > 0, x, 0.1 * x)", {"x": "N"}, "x", "J_x = diag(where(t0, 1, 0.1))"),
]


@pytest.mark.parametrize("expr, shapes, wrt, text", JACOBIANS, ids=[f"{e}/{w}" for e, _, w, _ in JACOBIANS])
def test_jacobian_against_differences_of_the_function(expr, shapes, wrt, text):
    problem = matcalc.problem(expr, **shapes)
    if text:
        assert text in str(matcalc.jacobian(problem, wrt))
    module = matcalc.compile(problem, jacobian=wrt)
    values, _ = _inputs(problem, 2)
    got = module.jacobian(**values)

    def f(point):
        return module.forward(*(point[n] for n in problem.variables))[0]
    expected = _fd_columns(f, values, wrt)
    assert np.shape(got) == np.shape(f(values)) + np.shape(values[wrt])  # whatever the form
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_hessian_of_an_array_valued_function_is_refused():
    with pytest.raises(matcalc.MatcalcError, match="scalar function"):
        matcalc.hessian(matcalc.problem("X @ w", X="N x D", w="D"), "w")


def test_cli_hessian_and_codegen_flags(tmp_path):
    run = [sys.executable, "-m", "matcalc.cli"]
    out = subprocess.run(run + ["hessian", "examples/logistic.mc", "--wrt", "w"],
                         capture_output=True, text=True, check=True).stdout
    assert "H_w = X.T @" in out
    target = tmp_path / "logistic_second.py"
    subprocess.run(run + ["codegen", "examples/logistic.mc", "--hessian", "w", "--hvp",
                          "--jacobian", "-o", str(target)], check=True)
    source = target.read_text()
    for head in ("def hessian(**inputs):", "def hvp(v, /, **inputs):", "def jacobian(**inputs):"):
        assert head in source
    assert max(len(line) for line in source.splitlines()) <= 79
    bad = subprocess.run(run + ["hessian", "examples/logistic.mc", "--wrt", "q"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_hessian_true_means_the_problems_wrt():
    p = matcalc.problem("sum(log(1 + exp(-y * (X @ w))))", X="n x d", y="n", w="d", wrt="w")
    assert matcalc.codegen(p, hessian=True) == matcalc.codegen(p, hessian="w")


BLOCKS = ("X: N x D\ny: N\nw: D\nb: scalar\nW: D x K\nc: K\n"
          "f = sum(softplus(-y * (X @ w + b))) + sum((X @ W) ** 2) * b + sum(W * W) + w @ W @ c\n"
          "wrt w, b, W")


def test_hessian_true_with_several_variables_gives_every_block():
    """hessian=True with several variables to differentiate by: every block
    H[x][y] = ∂²f/∂x∂y of shape x.shape + y.shape, as jax.hessian with
    every argnum (it gave the mixed block of the first two, and an error
    for three); those below the diagonal are the blocks above transposed."""
    problem = matcalc.parse(BLOCKS)
    assert "H_W: vec stacks columns" in str(matcalc.hessian(problem))  # a Kronecker form
    module = matcalc.compile(problem, hessian=True)
    values, _ = _inputs(problem)
    blocks = module.hessian(**values)
    assert list(blocks) == ["w", "b", "W"] and all(list(row) == ["w", "b", "W"]
                                                     for row in blocks.values())
    for x in blocks:
        for y in blocks:
            got = np.asarray(blocks[x][y])
            assert got.shape == np.shape(values[x]) + np.shape(values[y]), (x, y)
            expected = _fd_columns(_gradient(module, problem, x), values, y)
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=f"{x},{y}")
    assert matcalc.codegen(problem, hessian="w,b") != matcalc.codegen(problem, hessian=True)
    assert "H_b_w" not in matcalc.codegen(problem, hessian="w,b")  # the named pair only


def test_hessian_false_means_none_and_wrt_takes_any_iterable_of_names():
    p = matcalc.problem("sum(log(1 + exp(-y * (X @ w))))", X="n x d", y="n", w="d")
    assert matcalc.codegen(p, hessian=False, jacobian=False) == matcalc.codegen(p)
    assert matcalc.grad(p, {"w": 1}.keys()).problem.wrt == ("w",)
    assert matcalc.grad(p, iter(["w", "X"])).problem.wrt == ("w", "X")


@pytest.mark.parametrize("wrt", [1, 2.5, object(), [1, 2]])
def test_wrt_that_is_not_names_is_a_matcalc_error(wrt):
    p = matcalc.problem("sum(X @ w)", X="n x d", w="d")
    with pytest.raises(matcalc.MatcalcError, match="wrt must be variable names"):
        matcalc.grad(p, wrt)


def test_like_terms_inside_a_scaled_sum_collect():
    """∂²/∂s² (N/2 log s + S/(2s)) = (S/s − N/2) / s²: the S/(2s) of the
    second derivative and the one inside −(N/2 − S/(2s)) collect (they were
    t1 = t0 / 2 beside t1 - (N / 2 - t0 / 2)); checked against differences."""
    shapes = {"X": "N x D", "y": "N", "w": "D", "s2": "scalar positive"}
    problem = matcalc.problem("N / 2 * log(s2) + sum((y - X @ w) ** 2) / (2 * s2)", **shapes)
    assert str(matcalc.hessian(problem, "s2")).splitlines()[-2:] == [
        "t0 = sum((y - X @ w) ** 2) / s2", "H_s2 = (t0 - N / 2) / s2 / s2"]
    module = matcalc.compile(problem, hessian="s2")
    values, _ = _inputs(problem)
    expected = _fd_columns(_gradient(module, problem, "s2"), values, "s2")
    np.testing.assert_allclose(module.hessian(**values), expected, rtol=1e-5, atol=1e-6)


def test_a_scalar_divisor_leaves_an_outer_product():
    """outer(x, x / c) = outer(x, x) / c: by a symmetric A the two halves
    of (outer(x, g) + outer(g, x)) / 2 collect (were two N x N outers), and
    code divides the vector, not the N x N entries; the temperature-scaled
    softmax's Hessian is (diag(p) − p pᵀ) / τ."""
    p = matcalc.problem("x @ A @ x / c", x="N", A="N x N symmetric", c="scalar positive",
                        wrt="A")
    assert str(matcalc.grad(p)).splitlines()[-1] == "∂f/∂A = outer(x, x) / c"
    assert "dA = np.outer(x / c, x)" in matcalc.codegen(p)
    values, _ = _inputs(p)
    np.testing.assert_allclose(matcalc.compile(p).value_and_grad(**values)[1]["A"],
                               np.outer(values["x"], values["x"]) / values["c"], rtol=1e-13)
    lse = matcalc.problem("tau * logsumexp(z / tau)", z="K", tau="scalar positive")
    assert str(matcalc.hessian(lse, "z")).splitlines()[-1] == \
        "H_z = (diag(g0) - outer(g0, g0)) / tau"


def test_a_sign_labels_square_is_one_in_the_bias_hessian():
    """Logistic regression with y ∈ {−1, 1} and a bias: ∂²f/∂b² = Σ σ(1 − σ),
    as ∂²f/∂w² = Xᵀ diag(σ(1 − σ)) X (was (y ⊙ σ ⊙ (1 − σ)) · y)."""
    shapes = {"X": "N x D", "y": "N sign", "w": "D", "b": "scalar"}
    problem = matcalc.problem("sum(softplus(-y * (X @ w + b)))", **shapes)
    assert str(matcalc.hessian(problem, "b")).splitlines()[-1] == "H_b = g0 @ (1 - g0)"
    module = matcalc.compile(problem, hessian="b")
    values, _ = _inputs(problem)
    expected = _fd_columns(_gradient(module, problem, "b"), values, "b")
    np.testing.assert_allclose(module.hessian(**values), expected, rtol=1e-5, atol=1e-6)


def test_a_where_inside_a_branch_of_the_same_condition_is_settled():
    """The ELU's HVP: where(k, a, where(k, b, c) ⊙ Y + …) is where(k, a, c ⊙ Y
    + …), one select (was np.where(g0, v_Y, v_Y * g1 + g2 * Y) with g2 a
    where of g0 too)."""
    problem = matcalc.problem("sum(elu(X) * Y)", X="N x D", Y="N x D")
    assert str(matcalc.hvp(problem)).splitlines()[-2] == \
        "Hv_X = where(g0, v_Y, g1 * (v_Y + v_X * Y))"
    module = matcalc.compile(problem, hessian="X")
    values, _ = _inputs(problem)
    expected = _fd_columns(_gradient(module, problem, "X"), values, "X")
    np.testing.assert_allclose(module.hessian(**values), expected, rtol=1e-5, atol=1e-6)


def test_a_scale_that_moves_into_an_outer_product_leaves_it():
    """The Mahalanobis distance's blocks by x and by mu: solve(S, d) and
    S⁻¹ d are one vector t1 once S⁻¹ is computed, so outer(t1, t1 + t1) is
    2 t1 t1ᵀ and its 2 meets the divisor's (was outer(t1, 2 * t1) / f /
    (2 * f)); the x block is the mu block, bound once."""
    p = matcalc.parse("x, mu: D\nS: D x D spd\nd = x - mu\nf = sqrt(d @ solve(S, d))\n"
                      "wrt x, mu")
    text = str(matcalc.hessian(p))
    assert "2 * t1" not in text and "outer(t1, t1)" in text
    lines = dict(line.split(" = ", 1) for line in text.splitlines() if " = " in line)
    assert lines["H_x"] == lines["H_mu"]
    module = matcalc.compile(p, hessian=True)
    values, _ = _inputs(p)
    blocks = module.hessian(**values)
    for a in blocks:
        for b in blocks:
            expected = _fd_columns(_gradient(module, p, a), values, b)
            np.testing.assert_allclose(blocks[a][b], expected, rtol=1e-5, atol=1e-6)
