"""An elementwise operator registered at run time, with no module edited,
gets everything a built-in one has: a gradient (checked against finite
differences of a plain NumPy formula), LaTeX, Unicode, generated NumPy that
runs, the derivation step by step and a Hessian.

`cbrt` uses every target's default (NumPy has `np.cbrt`); `cube` has no
NumPy function of that name, so it registers its own forms and a helper.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import matcalc
from matcalc.ir.expr import const
from matcalc.ops import OPS, div, mul, power
from matcalc.ops.table import elementwise
from matcalc.targets import latex, numpy_forms, precedence as P, text, unicode
from matcalc.targets.forms import Form, call
from matcalc.targets.unicode import gradient_unicode

SOURCE = "x: n positive\nA: n x n\nf = sum({f}(x) * (A @ x))\nwrt x\n"


@pytest.fixture
def cbrt():
    """cbrt(x) = x^(1/3), d cbrt(x) = dx / (3 cbrt(x)²): one line."""
    yield elementwise("cbrt", lambda g, x, y: div(g, mul(const(3), power(y, const(2)))),
                      "positive")
    del OPS["cbrt"]


@pytest.fixture
def cube():
    """cube(x) = x³ with a form line where a target's default does not fit:
    NumPy calls a helper `_cube`, LaTeX and Unicode write a power."""
    op = elementwise("cube", lambda g, x, y: mul(const(3), g, power(x, const(2))))
    numpy_forms.FORMS["cube"] = call("_cube")
    numpy_forms.HELPERS["cube"] = '\ndef _cube(x):\n    """x ** 3."""\n    return x * x * x\n'
    latex.FORMS["cube"] = Form(r"{0}^{{\circ 3}}", P.POW, P.ATOM)
    unicode.FORMS["cube"] = Form("{0}³", P.POW, P.ATOM)
    yield op
    for registry in (OPS, numpy_forms.FORMS, numpy_forms.HELPERS, latex.FORMS, unicode.FORMS):
        del registry[op.name]


def _inputs(n: int = 4, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"x": rng.uniform(0.5, 2.0, n), "A": rng.normal(size=(n, n))}


def _finite_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of f at x, one coordinate at a time."""
    out = np.empty_like(x)
    for i in range(x.size):
        step = np.zeros_like(x)
        step[i] = eps
        out[i] = (f(x + step) - f(x - step)) / (2 * eps)
    return out


def _assert_derivatives(problem, formula):
    """The generated value, gradient and Hessian against the NumPy `formula`
    of f(x) and central differences of it (and of the gradient)."""
    values = _inputs()
    x, a = values["x"], values["A"]
    module = matcalc.compile(problem, hessian=True)
    value, grads = module.value_and_grad(**values)
    assert np.isclose(value, formula(x, a), rtol=1e-12)
    assert np.allclose(grads["x"], _finite_gradient(lambda z: formula(z, a), x),
                       rtol=1e-6, atol=1e-8)
    gradient = lambda z: module.value_and_grad(x=z, A=a)[1]["x"]  # noqa: E731
    numeric = np.stack([_finite_gradient(lambda z: gradient(z)[i], x) for i in range(x.size)])
    assert np.allclose(module.hessian(**values), numeric, rtol=1e-5, atol=1e-7)
    assert matcalc.check(problem).ok


def test_default_forms_from_the_name(cbrt):
    p = matcalc.parse(SOURCE.format(f="cbrt"))
    g = matcalc.grad(p)
    assert "t0 = cbrt(x)" in str(g)
    assert r"\operatorname{cbrt}\left(x\right)" in g.latex()
    assert "t₀ = cbrt(x)" in gradient_unicode(g)
    assert "np.cbrt(x)" in matcalc.codegen(p)


def test_default_gradient_and_hessian(cbrt):
    _assert_derivatives(matcalc.parse(SOURCE.format(f="cbrt")),
                        lambda x, a: np.sum(x ** (1 / 3) * (a @ x)))


def test_default_steps_and_second_order_text(cbrt):
    p = matcalc.parse(SOURCE.format(f="cbrt"))
    steps = matcalc.grad(p, steps=True).steps
    assert "[chain rule for the elementwise cbrt" in str(steps)   # (; an identity it used)
    assert r"\text{chain rule for the elementwise cbrt" in steps.latex()
    hessian = matcalc.hessian(p, "x")
    assert "cbrt(x)" in str(hessian) and r"\operatorname{cbrt}" in hessian.latex()


def test_registered_forms(cube):
    p = matcalc.parse(SOURCE.format(f="cube"))
    g = matcalc.grad(p)
    assert "t0 = cube(x)" in str(g)
    assert r"x^{\circ 3}" in g.latex()
    assert "t₀ = x³" in gradient_unicode(g)
    code = matcalc.codegen(p)
    assert "def _cube(x):" in code and "_cube(x)" in code.split("def forward")[1]
    _assert_derivatives(p, lambda x, a: np.sum(x ** 3 * (a @ x)))


def test_removed_again(cbrt):
    """The fixture's registration is the only one: the name is new."""
    assert OPS["cbrt"].elementwise and "cube" not in OPS
    assert "cube" not in numpy_forms.FORMS and "cube" not in latex.FORMS


@pytest.mark.parametrize("forms", [text.FORMS, latex.FORMS, unicode.FORMS, numpy_forms.FORMS],
                         ids=["text", "latex", "unicode", "numpy"])
def test_registries_list_only_exceptions(forms):
    """Every listed form writes its operator unlike the target's default."""
    for name in forms:
        if name not in OPS:  # a lowering's own spelling (tensordot): no operator, no default
            continue
        op = OPS[name]
        args = ["a", "b"][:2 if op.nargs is None else op.nargs]
        params = ({"shape": ("N", "D")} if op.dims or "shape" in dict(op.params)
                  else {"name": "Y"} if name == "name" else dict(op.params))
        listed, default = forms[name], forms.default(name)
        try:
            written = listed.render(args, params)
        except KeyError:  # a parameter with no default (index's key): no default to compare
            continue
        assert (written, listed.prec, listed.arg_prec) != \
            (default.render(args, params), default.prec, default.arg_prec), name


@pytest.fixture
def log2():
    """log2(x), d log2(x) = dx / (log(2) x): a rule with an exact constant
    SymPy keeps unevaluated (log(2)), which every output writes (registered
    over the table's log2, which writes log(2) as a node, and put back)."""
    table = OPS["log2"]
    yield elementwise("log2", lambda g, x, y: div(g, mul(x, const(sympy.log(2)))), "positive")
    OPS["log2"] = table


def test_an_exact_constant_in_a_rule_prints_everywhere(log2):
    p = matcalc.parse(SOURCE.format(f="log2"))
    g = matcalc.grad(p)
    assert "log(2)" in str(g) and r"\log{\left(2 \right)}" in g.latex()
    assert "log(2)" in gradient_unicode(g)
    _assert_derivatives(p, lambda x, a: np.sum(np.log2(x) * (a @ x)))
    values = {k: v.astype(np.float32) for k, v in _inputs().items()}
    assert matcalc.compile(p).value_and_grad(**values)[1]["x"].dtype == np.float32


def test_the_check_compares_the_value_through_numpy_of_the_same_name(cbrt, log2):
    """`matcalc.check` reads a registered function written as NumPy's ufunc
    of the same name (np.cbrt, np.log2) for its value comparison."""
    for name in ("cbrt", "log2"):
        result = matcalc.check(matcalc.parse(SOURCE.format(f=name)))
        assert result.ok and result.value_error is not None and result.value_error < 1e-12
