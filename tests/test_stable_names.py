"""Stable forms whatever the user names (issue 12, section 3).

Every stable rewrite the builders know (log of softmax, of sigmoid, of
1 − sigmoid and of a sum of exps; log(1 + exp(z)) = softplus(z); log(1 + u)
= log1p(u); exp(x) − 1 = expm1(x) and 1 + expm1(x) = exp(x); exp of log and
log of exp; exp(x − logsumexp(x)) and exp(x) / Σ exp(x) = softmax(x);
1 / (1 + e⁻ᶻ) = σ(z)) is written as a chain of parts. Each case is compiled
with every choice of which parts are named intermediates and which are
written inline, from none named (the inline form) to all named. At inputs up
to ±1e3 in float64 and ±80 in float32 the generated value and gradients are
finite and equal to a reference computed here with NumPy's stable
primitives (`np.logaddexp`, and σ from e^-|z|), independently of matcalc; at
moderate inputs `matcalc.check` compares them with finite differences.
"""

from __future__ import annotations

import itertools
import re
import warnings

import numpy as np
import pytest

import matcalc
from matcalc.ir.expr import Apply, postorder


def _sigmoid(z):
    """σ(z) from e^-|z|: never an overflow."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _lse(z, axis):
    if axis is None:
        return np.logaddexp.reduce(z.ravel())
    return np.logaddexp.reduce(z, axis=axis)


def _softmax(z, axis):
    lse = _lse(z, axis)
    return np.exp(z - (lse if axis in (None, 0) else lse[:, None]))


def _log_softmax_case(axis):
    def ref(Z, Y):
        lse = _lse(Z, axis)
        logp = Z - (lse if axis in (None, 0) else lse[:, None])
        rows = Y.sum() if axis is None else Y.sum(axis=axis)
        back = rows if axis in (None, 0) else rows[:, None]
        return Y * logp, {"Z": Y - _softmax(Z, axis) * back, "Y": logp}
    return ref


def _lse_case(axis):
    def ref(Z, c):
        lse = _lse(Z, axis)
        p = _softmax(Z, axis)
        return c * lse, {"Z": p * (c if axis in (None, 0) else c[:, None]), "c": lse}
    return ref


def _softmax_value(axis):
    def ref(Z, Y):
        p = _softmax(Z, axis)
        s = (p * Y).sum(axis=axis)
        return p * Y, {"Z": p * (Y - (s if axis in (None, 0) else s[:, None])), "Y": p}
    return ref


def _bce(z, y):
    terms = -(y * -np.logaddexp(0, -z) + (1 - y) * -np.logaddexp(0, z))
    return terms, {"z": _sigmoid(z) - y, "y": np.logaddexp(0, -z) - np.logaddexp(0, z)}


VECTOR = "x, c: N"
MATRIX = "Z, Y: N x K"
LSE_DECL = "Z: N x K\nc: {}"

# name: (declarations, parts (name, expression) ending with f, input domain,
#        reference (inputs) -> (terms of f, {variable: gradient}))
CASES = {
    "log_sigmoid": (VECTOR, [("S", "sigmoid(x)"), ("f", "sum(c * log(S))")], "real",
                    lambda x, c: (c * -np.logaddexp(0, -x),
                                  {"x": c * _sigmoid(-x), "c": -np.logaddexp(0, -x)})),
    "log_one_minus_sigmoid": (
        VECTOR, [("S", "sigmoid(x)"), ("T", "1 - S"), ("f", "sum(c * log(T))")], "real",
        lambda x, c: (c * -np.logaddexp(0, x), {"x": -c * _sigmoid(x), "c": -np.logaddexp(0, x)})),
    "softplus": (VECTOR, [("E", "exp(x)"), ("T", "1 + E"), ("f", "sum(c * log(T))")], "real",
                 lambda x, c: (c * np.logaddexp(0, x), {"x": c * _sigmoid(x),
                                                        "c": np.logaddexp(0, x)})),
    "log1p": (VECTOR, [("T", "1 + x"), ("f", "sum(c * log(T))")], "above -1",
              lambda x, c: (c * np.log1p(x), {"x": c / (1 + x), "c": np.log1p(x)})),
    "expm1": (VECTOR, [("E", "exp(x)"), ("M", "E - 1"), ("f", "sum(c * M)")], "below 700",
              lambda x, c: (c * np.expm1(x), {"x": c * np.exp(x), "c": np.expm1(x)})),
    "one_plus_expm1": (VECTOR, [("M", "expm1(x)"), ("T", "1 + M"), ("f", "sum(c * log(T))")],
                       "real", lambda x, c: (c * x, {"x": c, "c": x})),
    "log_of_exp": (VECTOR, [("E", "exp(x)"), ("f", "sum(c * log(E))")], "real",
                   lambda x, c: (c * x, {"x": c, "c": x})),
    "exp_of_log": (VECTOR, [("L", "log(x)"), ("f", "sum(c * exp(L))")], "positive",
                   lambda x, c: (c * x, {"x": c, "c": x})),
    "sigmoid_quotient": (
        VECTOR, [("E", "exp(-x)"), ("D", "1 + E"), ("S", "1 / D"), ("f", "sum(c * S)")], "real",
        lambda x, c: (c * _sigmoid(x), {"x": c * _sigmoid(x) * _sigmoid(-x), "c": _sigmoid(x)})),
    "log_of_sigmoid_quotient": (
        VECTOR, [("E", "exp(-x)"), ("S", "1 / (1 + E)"), ("f", "sum(c * log(S))")], "real",
        lambda x, c: (c * -np.logaddexp(0, -x),
                      {"x": c * _sigmoid(-x), "c": -np.logaddexp(0, -x)})),
    "binary_cross_entropy": (
        "z, y: N", [("S", "sigmoid(z)"),
                    ("f", "-sum(y * log(S) + (1 - y) * log(1 - S))")], "real", _bce),
    **{f"log_softmax_axis{a}": (
        MATRIX, [("P", f"softmax(Z, axis={a})"), ("f", "sum(Y * log(P))")], "real",
        _log_softmax_case(None if a == "None" else int(a))) for a in ("None", "0", "1")},
    **{f"logsumexp_axis{a}": (
        LSE_DECL.format({"None": "scalar", "0": "K", "1": "N"}[a]),
        [("E", "exp(Z)"), ("S", f"sum(E, axis={a})"), ("f", "sum(c * log(S))")], "real",
        _lse_case(None if a == "None" else int(a))) for a in ("None", "0", "1")},
    "log_of_softmax_quotient": (
        MATRIX, [("E", "exp(Z)"), ("S", "sum(E, axis=1)"), ("P", "E / S[:, None]"),
                 ("f", "sum(Y * log(P))")], "real", _log_softmax_case(1)),
    "softmax_quotient_axis0": (
        MATRIX, [("E", "exp(Z)"), ("S", "sum(E, axis=0)"), ("P", "E / S"),
                 ("f", "sum(Y * P)")], "real", _softmax_value(0)),
    "exp_minus_logsumexp": (
        MATRIX, [("L", "logsumexp(Z, axis=1)"), ("A", "Z - L[:, None]"), ("P", "exp(A)"),
                 ("f", "sum(Y * P)")], "real", _softmax_value(1)),
    "log_of_exp_minus_logsumexp": (
        MATRIX, [("L", "logsumexp(Z, axis=0)"), ("P", "exp(Z - L)"),
                 ("f", "sum(Y * log(P))")], "real", _log_softmax_case(0)),
}


def _inline(parts, named) -> str:
    """The problem's statements with the parts not in `named` written inline."""
    lines, text = [], {}
    for name, expr in parts:
        for other, body in text.items():
            expr = re.sub(rf"\b{other}\b", f"({body})", expr)
        if name in named or name == "f":
            lines.append(f"{name} = {expr}")
        else:
            text[name] = expr
    return "\n".join(lines)


def _variants(case):
    """(label, source) for every choice of named parts."""
    decl, parts, _, _ = CASES[case]
    names = [n for n, _ in parts[:-1]]
    for k in range(len(names) + 1):
        for named in itertools.combinations(names, k):
            label = "+".join(named) or "inline"
            yield label, f"{decl}\n{_inline(parts, set(named))}\n"


VARIANTS = [(case, label, source) for case in CASES for label, source in _variants(case)]
IDS = [f"{case}-{label}" for case, label, _ in VARIANTS]


def _extremes(limit: float, n: int, domain: str, rng) -> np.ndarray:
    """Inputs spanning ±limit (within the case's domain), extremes included."""
    x = np.concatenate([[-limit, limit, -limit / 2, 0.0, limit / 2],
                        rng.uniform(-limit, limit, max(n - 5, 0))])[:n]
    if domain == "above -1":
        x = np.where(x <= -1, -1 + np.abs(x) / (2 * limit), x)
    elif domain == "positive":
        x = np.abs(x) + 1e-3
    elif domain == "below 700":
        x = np.minimum(x, 700.0 if limit > 100 else 80.0)
    return x


def _inputs(case, limit, dtype, rng):
    decl = CASES[case][0]
    domain = CASES[case][2]
    if decl.startswith("Z"):
        shape = (5, 4)
        out = {"Z": _extremes(limit, 20, domain, rng).reshape(shape)}
        if "Y" in decl:
            out["Y"] = rng.standard_normal(shape)
        else:
            size = {"scalar": (), "K": (4,), "N": (5,)}[decl.split(": ")[-1]]
            out["c"] = rng.standard_normal(size)
    else:
        first = decl.split(",")[0]
        out = {first: _extremes(limit, 12, domain, rng)}
        other = "c" if first == "x" else "y"
        out[other] = rng.standard_normal(12) if other == "c" else rng.uniform(0, 1, 12)
    return {k: np.asarray(v, dtype) for k, v in out.items()}


@pytest.mark.parametrize("limit, dtype, rtol", [(1e3, np.float64, 1e-11),
                                                (80.0, np.float32, 1e-5)],
                         ids=["float64-1e3", "float32-80"])
@pytest.mark.parametrize("case, label, source", VARIANTS, ids=IDS)
def test_finite_and_equal_to_a_stable_reference(case, label, source, limit, dtype, rtol):
    rng = np.random.default_rng(12)
    inputs = _inputs(case, limit, dtype, rng)
    module = matcalc.compile(source)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # no overflow, no log(0)
        value, grads = module.value_and_grad(**inputs)
    terms, want = CASES[case][3](*(inputs[k].astype(np.float64) for k in inputs))
    scale = np.sum(np.abs(terms)) + 1.0
    assert np.isfinite(value), f"{source}: value {value}"
    assert abs(float(value) - np.sum(terms)) <= rtol * scale, (source, value, np.sum(terms))
    for name, g in want.items():
        got = np.asarray(grads[name], np.float64)
        assert np.all(np.isfinite(got)), f"{source}: d{name} = {got}"
        np.testing.assert_allclose(got, g, rtol=rtol, atol=rtol * (np.max(np.abs(g)) + 1.0),
                                   err_msg=f"{source}: d{name}")


def _operators(source) -> set[str]:
    output = matcalc.parse(source).output
    return {n.op for n in postorder([output]) if isinstance(n, Apply)} - {"name"}


NAMED = [(c, lab, s) for c, lab, s in VARIANTS if lab != "inline"]


@pytest.mark.parametrize("case, label, source", NAMED,
                         ids=[f"{c}-{lab}" for c, lab, _ in NAMED])
def test_names_do_not_change_what_is_computed(case, label, source):
    """A named variant computes with the operators of the inline form (the
    stable ones), not with the log or exp that it names."""
    inline = next(s for c, lab, s in VARIANTS if c == case and lab == "inline")
    assert _operators(source) == _operators(inline), source


@pytest.mark.parametrize("case, label, source", VARIANTS, ids=IDS)
def test_finite_differences_at_moderate_inputs(case, label, source):
    problem = matcalc.parse(source)
    result = matcalc.check(problem, dims={d: n for d, n in (("N", 4), ("K", 3))
                                          if d in problem.dims}, seed=3)
    assert result.ok, f"{source}\n{result}"


REPRODUCER = """\
X: N x D
W: D x K
b: K
Y: N x K
P = softmax(X @ W + b, axis=1)
loss = -sum(Y * log(P)) / N
"""


def test_softmax_classifier_with_a_named_softmax_is_finite_at_large_logits():
    """The reproducer of issue 12 (§3): the named P gave NaN loss and
    gradients with RuntimeWarnings when the logits are large."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 3))
    W = 300 * rng.standard_normal((3, 4))
    b = rng.standard_normal(4)
    Y = np.eye(4)[rng.integers(0, 4, 6)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value, grads = matcalc.compile(REPRODUCER).value_and_grad(X=X, W=W, b=b, Y=Y)
    Z = X @ W + b
    assert np.max(np.abs(Z)) > 500
    logp = Z - np.logaddexp.reduce(Z, axis=1)[:, None]
    dZ = (_softmax(Z, 1) * Y.sum(axis=1)[:, None] - Y) / 6
    np.testing.assert_allclose(value, -np.sum(Y * logp) / 6, rtol=1e-12)
    np.testing.assert_allclose(grads["W"], X.T @ dZ, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["b"], dZ.sum(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["X"], dZ @ W.T, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(grads["Y"], -logp / 6, rtol=1e-12)


def test_a_named_value_keeps_its_name_where_it_is_computed():
    """P is printed and computed under the user's name (the gradient needs
    the softmax), and its log is the stable log-softmax."""
    text = "\n".join(str(matcalc.grad(REPRODUCER)).splitlines()[1:])  # the header as written
    assert "P = softmax(" in text and "* P" in text
    assert "log(P)" not in text and "logsumexp(" in text
    source = matcalc.codegen(REPRODUCER)
    assert "P = _softmax(" in source and "np.log(P)" not in source


def test_naming_the_logits_shares_them():
    """With Z named, the stable form computes Z once: Z - logsumexp(Z)."""
    text = str(matcalc.grad(REPRODUCER.replace("P = softmax(X @ W + b, axis=1)",
                                               "Z = X @ W + b\nP = softmax(Z, axis=1)")))
    assert "Z = X @ W + b" in text and "Z - logsumexp(Z, axis=1)[:, None]" in text


def _lse_rows(X):
    return np.logaddexp.reduce(X, axis=1)


def _lse_columns(X):
    return np.logaddexp.reduce(X, axis=0)


@pytest.mark.parametrize("written, reference, is_softmax", [
    ("sum(W * exp(X - logsumexp(X, axis=1)))",             # a vector along the rows
     lambda X, W: np.sum(W * np.exp(X - _lse_rows(X))), False),
    ("sum(W * exp(X - logsumexp(X, axis=0)[:, None]))",
     lambda X, W: np.sum(W * np.exp(X - _lse_columns(X)[:, None])), False),
    ("sum(W * (exp(X) / sum(exp(X), axis=0)[:, None]))",
     lambda X, W: np.sum(W * np.exp(X) / np.exp(X).sum(axis=0)[:, None]), False),
    ("L = logsumexp(X, axis=1)\nf = sum(W * exp(X - L))",
     lambda X, W: np.sum(W * np.exp(X - _lse_rows(X))), False),
    ("E = exp(X)\nS = sum(E, axis=0)\nf = sum(W * (E / S[:, None]))",
     lambda X, W: np.sum(W * np.exp(X) / np.exp(X).sum(axis=0)[:, None]), False),
    ("L = logsumexp(X, axis=0)\nf = sum(W * exp(X - L))",
     lambda X, W: np.sum(W * np.exp(X - _lse_columns(X))), True),
    ("E = exp(X)\nS = sum(E, axis=1)\nf = sum(W * (E / S[:, None]))",
     lambda X, W: np.sum(W * np.exp(X) / np.exp(X).sum(axis=1)[:, None]), True),
])
def test_stable_forms_keep_the_broadcast_orientation(written, reference, is_softmax):
    """On a square array a reduction broadcast along the other axis is not a
    softmax, and one along its own axis is: the text is computed as NumPy
    reads it, named or not."""
    X = np.array([[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0], [2.0, -2.0, 1.0]])
    W = np.arange(9.0).reshape(3, 3) / 9
    value, _ = matcalc.compile(f"X, W: N x N\n{written}\n").value_and_grad(X=X, W=W)
    np.testing.assert_allclose(value, reference(X, W), rtol=1e-12)
    output = matcalc.parse(f"X, W: N x N\n{written}\n").output
    assert ("softmax" in repr(output)) == is_softmax


@pytest.mark.parametrize("case, label, source", VARIANTS, ids=IDS)
def test_hessian_vector_products_are_finite_at_large_inputs(case, label, source):
    """Second order is derived from the same stable graph: finite at ±1e3."""
    inputs = _inputs(case, 1e3, np.float64, np.random.default_rng(5))
    module = matcalc.compile(source, hvp=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        products = module.hvp({k: np.ones_like(a) for k, a in inputs.items()}, **inputs)
    for name, h in products.items():
        assert np.all(np.isfinite(h)), f"{source}: (H v)_{name} = {h}"


def test_an_adjoint_that_is_a_transposed_input_is_no_name():
    """The adjoint Xᵀ of tr(Xᵀ A X)'s product Xᵀ A is read as itself: the
    gradient printed δt0 = X.T, then A @ δt0.T and X @ δt0."""
    text = str(matcalc.grad(matcalc.problem("trace(X.T @ A @ X)", X="N x K", A="N x N")))
    assert "δ" not in text and "∂f/∂X = t0.T + A @ X" in text and "∂f/∂A = X @ X.T" in text
