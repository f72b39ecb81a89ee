"""Generated modules check their inputs, keep the inputs' floating type and
treat a zero size in a denominator alike in every function.

* Every entry point (`forward`, `value_and_grad`, `hessian`, `hvp`,
  `jacobian`) checks each input (and hvp its direction) before computing:
  the number of axes, each size, one size per dimension name across all
  inputs, fixed sizes exactly, sizes at least 1; a mismatch is a ValueError
  naming the input, the declared shape with the sizes bound so far and the
  shape given. A missing or unknown keyword is a TypeError naming it. Lists
  and integer arrays are accepted (float64); strings are refused.
* Every code target (NumPy, PyTorch, JAX, the array API on each library)
  promotes mixed floating types to one, refuses complex numbers, None and
  text by the input's name, and a dimension smaller than a fixed index
  needs (`X: D must be at least 6, got 3`).
* float32 inputs give float32 values, gradients, Hessians, HVPs and
  Jacobians: every example, problems whose constants are functions of
  dimensions (sqrt(K), log(2π)), zero results, and a sample of the property
  strategy's problems.
* A dimension expression that is 0 in a denominator (N - 1 at N = 1) gives
  nan with NumPy's RuntimeWarning in the forward and the backward alike.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import matcalc
from matcalc.checks.verify import draw, sizes

from conftest import EXAMPLES
from corpus_checks import compile_for
from strategies import RandomSource, build_problem

LOGISTIC = (EXAMPLES / "logistic.mc").read_text("utf-8")


def _logistic_inputs(n=6, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return {"X": rng.standard_normal((n, d)), "y": np.sign(rng.standard_normal(n)),
            "w": rng.standard_normal(d)}


def _entry_points(module, inputs):
    """Each function of a module with every second-order function, called
    with `inputs` (the hvp along ones)."""
    wrt = module.WRT
    direction = {w: np.ones(np.shape(inputs[w])) for w in wrt if w in inputs}
    v = direction if len(wrt) > 1 else direction.get(wrt[0], 1.0)
    return {
        "forward": lambda: module.forward(*(inputs.get(n) for n in module.INPUTS)),
        "value_and_grad": lambda: module.value_and_grad(**inputs),
        "hessian": lambda: module.hessian(**inputs),
        "hvp": lambda: module.hvp(v, **inputs),
        "jacobian": lambda: module.jacobian(**inputs),
    }


ENTRY_POINTS = ["forward", "value_and_grad", "hessian", "hvp", "jacobian"]


@pytest.fixture(scope="module")
def logistic():
    return matcalc.compile(LOGISTIC, hessian="w", hvp=True, jacobian=True)


# ------------------------------------------------------------------ shapes ---

@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_column_of_labels_is_refused_not_silently_broadcast(logistic, entry):
    """y of shape (N, 1) broadcast against X @ w of shape (N,) made an N x N
    array: a wrong value (31.4 instead of 4.55) and a 3 x 6 'gradient'."""
    inputs = _logistic_inputs()
    inputs["y"] = inputs["y"][:, None]
    with pytest.raises(ValueError, match=r"^y: expected shape \(N,\) = \(6,\), "
                                         r"got \(6, 1\)$"):
        _entry_points(logistic, inputs)[entry]()


def test_least_squares_with_a_column_of_targets_names_the_input():
    """It failed inside einsum, with a message about an einstein sum."""
    module = matcalc.compile((EXAMPLES / "least_squares.mc").read_text("utf-8"))
    inputs = _logistic_inputs()
    with pytest.raises(ValueError, match=r"^b: expected shape \(M,\) = \(6,\), got \(6, 1\)$"):
        module.value_and_grad(A=inputs["X"], x=inputs["w"], b=inputs["y"][:, None])


@pytest.mark.parametrize("name, value, message", [
    ("y", np.ones(5), r"y: expected shape \(N,\) = \(6,\), got \(5,\)"),
    ("w", np.ones(4), r"w: expected shape \(D,\) = \(3,\), got \(4,\)"),
    ("X", np.ones(6), r"X: expected shape \(N, D\), got \(6,\)"),
    ("X", np.ones((6, 3, 1)), r"X: expected shape \(N, D\), got \(6, 3, 1\)"),
    ("w", np.float64(1.0), r"w: expected shape \(D,\) = \(3,\), got \(\)"),
    ("X", np.ones((0, 3)), r"X: expected shape \(N, D\), got \(0, 3\) \(sizes are at least 1\)"),
])
def test_each_mismatch_names_the_input_and_both_shapes(logistic, name, value, message):
    inputs = {**_logistic_inputs(), name: value}
    with pytest.raises(ValueError, match="^" + message + "$"):
        logistic.value_and_grad(**inputs)


def test_a_dimension_takes_one_size_across_inputs_and_fixed_sizes_are_exact():
    module = matcalc.compile("S: D x D\nx: 3\nb: D\nf = sum(S @ b) + sum(x)\n")
    ok = {"S": np.eye(2), "x": np.ones(3), "b": np.ones(2)}
    assert module.value_and_grad(**ok)[0] == pytest.approx(5.0)
    for name, value, message in [
            ("S", np.ones((2, 3)), r"S: expected shape \(D, D\) = \(2, 2\), got \(2, 3\)"),
            ("x", np.ones(2), r"x: expected shape \(3,\), got \(2,\)"),
            ("b", np.ones(3), r"b: expected shape \(D,\) = \(2,\), got \(3,\)")]:
        with pytest.raises(ValueError, match="^" + message + "$"):
            module.forward(*({**ok, name: value}[n] for n in module.INPUTS))


def test_dimensions_in_constants_come_from_the_inputs():
    """`/ N` uses the N the inputs bind, whatever input binds it."""
    module = matcalc.compile("y: N\nX: N x D\nw: D\nf = sum((X @ w - y) ** 2) / N\n")
    inputs = _logistic_inputs(n=4)
    value, grads = module.value_and_grad(**inputs)
    r = inputs["X"] @ inputs["w"] - inputs["y"]
    assert value == pytest.approx(r @ r / 4)
    np.testing.assert_allclose(grads["w"], 2 * inputs["X"].T @ r / 4)


# ---------------------------------------------------------------- keywords ---

@pytest.mark.parametrize("entry", ENTRY_POINTS[1:])
def test_a_missing_input_is_a_type_error_naming_it(logistic, entry):
    inputs = _logistic_inputs()
    del inputs["y"]
    with pytest.raises(TypeError, match=r"^missing input 'y'; the inputs are X, y, w$"):
        _entry_points(logistic, inputs)[entry]()


@pytest.mark.parametrize("entry", ENTRY_POINTS[1:])
def test_an_unknown_input_is_a_type_error_naming_it(logistic, entry):
    inputs = {**_logistic_inputs(), "W": np.ones(3)}
    with pytest.raises(TypeError, match=r"^unknown input 'W'; the inputs are X, y, w$"):
        _entry_points(logistic, inputs)[entry]()
    inputs["w"] = inputs.pop("W")
    del inputs["X"]
    inputs["x"] = np.ones((6, 3))
    with pytest.raises(TypeError, match=r"^missing input 'X', unknown input 'x'"):
        _entry_points(logistic, inputs)[entry]()


def test_renamed_inputs_are_given_by_their_own_names():
    module = matcalc.compile("lambda: scalar\nnp: N\nf = lambda * sum(np ** 2)\n",
                             hessian="np", hvp=True)
    value, grads = module.value_and_grad(**{"lambda": 2.0, "np": [1.0, 2.0]})
    assert value == 10.0 and list(grads["np"]) == [4.0, 8.0]
    np.testing.assert_allclose(module.hessian(**{"lambda": 2.0, "np": [1.0, 2.0]}),
                               4 * np.eye(2))
    with pytest.raises(TypeError, match="missing input 'lambda'"):
        module.value_and_grad(np=[1.0])


@pytest.mark.parametrize("target", ["numpy", "array-api", "torch", "jax"])
@pytest.mark.parametrize("name", ["dout", "usual", "_numbers", "_ON_CPU", "_forward"])
def test_an_input_named_as_the_modules_own_names_is_an_input(target, name):
    """A scalar input named dout was backward's upstream gradient on torch
    and JAX (42 and dx = 18 x for 14 and 6 x), usual the checks' fast-path
    flag on NumPy, and _numbers, _ON_CPU, _forward the module's helpers."""
    module = compile_for(f"{name}: scalar\nx: N\nf = sum(x ** 2) * {name}\n", target)
    value, grads = module.value_and_grad(**{name: 3.0, "x": [1.0, 2.0, 3.0]})
    assert float(value) == 42.0 and float(grads[name]) == 14.0
    assert np.asarray(grads["x"]).tolist() == [6.0, 12.0, 18.0]


@pytest.mark.parametrize("target", ["numpy", "array-api", "torch", "jax"])
def test_dout_of_an_array_valued_function_has_its_shape(target):
    """tanh(X W) is N x K: a dout of another shape was broadcast into the
    gradients (a 1 x K row, a number, the transpose where N = K)."""
    module = compile_for("X: N x D\nW: D x K\nf = tanh(X @ W)\n", target)
    to = {"torch": lambda a: __import__("torch").asarray(a),
          "jax": lambda a: __import__("jax.numpy").numpy.asarray(a)}.get(target, np.asarray)
    X, W = to(np.ones((5, 3))), to(np.full((3, 4), 0.1))
    value, cache = module.forward(X, W)
    dX, _ = module.backward(cache, to(np.ones((5, 4))))
    assert tuple(dX.shape) == (5, 3)
    for dout in (np.ones((1, 4)), np.ones((4, 5)), 1.0):
        dout = dout if isinstance(dout, float) else to(dout)
        with pytest.raises(ValueError, match=r"^dout: expected shape \(5, 4\), got "):
            module.backward(cache, dout)


@pytest.mark.parametrize("target", ["numpy", "array-api", "torch", "jax"])
def test_an_axis_declared_as_a_product_is_that_product(target):
    """D = 4 * E read E as 6 // 4 = 1 from a 2 x 6 X (the value 12, a 2 x 4
    gradient), and F = 4 * H took X's 8 columns beside a b of 2 entries."""
    module = compile_for("H = 4\nD = H * E\nX: N x D\nf = sum(X) / E\n", target)
    with pytest.raises(ValueError, match=r"^X: axis 1 is 4\*E, expected a multiple of 4, got 6$"):
        module.value_and_grad(X=np.ones((2, 6)))
    assert float(module.value_and_grad(X=np.ones((2, 8)))[0]) == 8.0
    module = compile_for("F = 4 * H\nX: N x F\nb: H\nf = sum(X) + sum(b)\n", target)
    with pytest.raises(ValueError, match=r"^X: axis 1 is 4\*H, expected 4, got 8$"):
        module.value_and_grad(X=np.ones((2, 8)), b=np.ones(1))
    assert float(module.value_and_grad(X=np.ones((2, 8)), b=np.ones(2))[0]) == 18.0


@pytest.mark.parametrize("target", ["numpy", "array-api", "torch", "jax"])
def test_a_complex_hvp_direction_is_refused(target):
    """NumPy's and the array API's hvp dropped v's imaginary part (ones + 1j
    gave the hvp along ones); torch and JAX refused it."""
    module = compile_for("X: N x D\nw: D\nf = sum(exp(X @ w))\nwrt w\n", target, hvp=True)
    with pytest.raises(TypeError, match=r"^v: expected an array of real numbers, got .*complex"):
        module.hvp(np.ones(2) + 1j, X=np.ones((3, 2)), w=np.full(2, 0.1))


@pytest.mark.parametrize("target", ["numpy", "array-api", "torch", "jax"])
def test_a_complex_dout_is_refused(target):
    """backward(cache, 1j) of a scalar function returned complex gradients
    (NumPy, JAX, the array API) or raised torch's dtype error."""
    module = compile_for("x: N\nf = sum(x ** 2)\n", target)
    _, cache = module.forward([1.0, 2.0])
    with pytest.raises(TypeError, match=r"^dout: expected a real number, got 1j"):
        module.backward(cache, 1j)
    assert np.asarray(module.backward(cache, 2.0)[0]).tolist() == [4.0, 8.0]


def test_every_name_a_module_defines_is_kept_from_the_inputs():
    """The names a generated module binds at its top level are reserved, so
    no input's identifier shadows one."""
    import ast
    from matcalc.targets import code_target
    from matcalc.targets.naming import RESERVED, reserved_names
    text = ("X: N x D\nW: D x K\nb: K\nT: N x K onehot\nf = -sum(T * log_softmax(X @ W + b, "
            "axis=1)) / N + sum(sigmoid(X)) + sum(softplus(W)) + sum(erf(W)) + sum(X[1:])")
    for target in ("numpy", "array-api", "torch", "jax"):
        for options in ({}, {"hvp": True}, {"hessian": True}):
            tree = ast.parse(matcalc.codegen(text, target=target, **options))
            top = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
            top |= {n.id for a in tree.body if isinstance(a, ast.Assign) for t in a.targets
                    for n in ast.walk(t) if isinstance(n, ast.Name)}
            top |= {(a.asname or a.name).split(".")[0] for i in tree.body
                    if isinstance(i, (ast.Import, ast.ImportFrom)) for a in i.names}
            assert top <= RESERVED | reserved_names(code_target(target).TARGET), (target, options)


def test_the_hvp_direction_has_the_shape_of_its_input(logistic):
    """A column v for a vector w broadcast silently, as y did."""
    inputs = _logistic_inputs()
    want = logistic.hvp(np.ones(3), **inputs)
    np.testing.assert_allclose(logistic.hvp([1, 1, 1], **inputs), want)
    with pytest.raises(ValueError, match=r"^v: expected shape \(3,\), got \(3, 1\)$"):
        logistic.hvp(np.ones((3, 1)), **inputs)
    module = matcalc.compile("x: N\ny: N\nf = sum(x * y ** 2)\n", hvp=True)
    given = {"x": np.ones(2), "y": np.ones(2)}
    hv = module.hvp({"x": np.ones(2), "y": np.zeros(2)}, **given)
    assert hv["y"].tolist() == [2.0, 2.0]
    with pytest.raises(ValueError, match=r"^v\['y'\]: expected shape \(2,\), got \(1,\)$"):
        module.hvp({"x": np.ones(2), "y": np.ones(1)}, **given)
    with pytest.raises(TypeError, match=r"^v\['y'\] is missing: v needs a direction for "
                                        r"each of x, y$"):
        module.hvp({"x": np.ones(2)}, **given)
    with pytest.raises(TypeError, match=r"^v: one direction per variable \(x, y\), as a "
                                        r"dict \{'x': \.\.\., 'y': \.\.\.\}$"):
        module.hvp(np.ones(2), **given)


@pytest.mark.parametrize("target", ["numpy", "array-api", "torch", "jax"])
def test_regression_one_variables_hvp_takes_its_direction_by_name_too(target):
    # m.hvp({'w': v}, ...) raised "float() argument must be ... not 'dict'"
    # from inside NumPy; several variables' modules take v as that dict
    module = compile_for(LOGISTIC, target, hvp=True)
    inputs = _logistic_inputs()
    want = np.asarray(module.hvp(np.ones(3), **inputs))
    np.testing.assert_allclose(np.asarray(module.hvp({"w": np.ones(3)}, **inputs)), want)
    with pytest.raises(TypeError, match=r"^v\['W'\]: not a variable of the gradient \(w\)$"):
        module.hvp({"W": np.ones(3)}, **inputs)
    with pytest.raises(TypeError, match=r"^v\['X'\]: not a variable of the gradient \(w\)$"):
        module.hvp({"w": np.ones(3), "X": np.ones(3)}, **inputs)


# ------------------------------------------------------------- array-likes ---

def test_lists_and_integer_arrays_are_converted_to_float64(logistic):
    inputs = _logistic_inputs()
    want_value, want = logistic.value_and_grad(**inputs)
    as_lists = {k: v.tolist() for k, v in inputs.items()}
    as_ints = {**inputs, "y": inputs["y"].astype(np.int8)}
    for given in (as_lists, as_ints):
        value, grads = logistic.value_and_grad(**given)
        assert np.asarray(value).dtype == grads["w"].dtype == np.float64
        assert value == pytest.approx(want_value)
        np.testing.assert_allclose(grads["w"], want["w"])
        np.testing.assert_allclose(logistic.hessian(**given), logistic.hessian(**inputs))


def test_small_integers_do_not_overflow():
    """int8 inputs are float64 before anything is computed: 100 ** 2 is not
    wrapped around to 16."""
    module = matcalc.compile("x: N\nf = sum(x ** 2)\n")
    value, grads = module.value_and_grad(x=np.array([100, 1], dtype=np.int8))
    assert value == 10001.0 and grads["x"].tolist() == [200.0, 2.0]


def test_non_numbers_are_refused(logistic):
    inputs = {**_logistic_inputs(), "w": np.array(["a", "b", "c"])}
    with pytest.raises(TypeError, match=r"^w: expected an array of real numbers, got <U1$"):
        logistic.value_and_grad(**inputs)


def test_python_numbers_for_scalars_take_the_arrays_type():
    module = matcalc.compile("x: N\nlam: scalar\nf = lam * sum(x ** 2) + lam ** 2\n")
    for dtype in (np.float32, np.float64):
        value, grads = module.value_and_grad(x=np.ones(3, dtype), lam=2)
        assert type(value) is dtype and type(grads["lam"]) is dtype
        assert value == 10.0 and grads["lam"] == 7.0
    value, grads = module.value_and_grad(x=[1, 1, 1], lam=2.0)
    assert type(value) is np.float64


def test_the_usual_case_is_a_few_comparisons_written_for_the_problem():
    """The check is one helper, called first by every function; its usual
    case compares tuples (no loop) and it reads every dimension once."""
    source = matcalc.codegen(matcalc.parse((EXAMPLES / "mlp.mc").read_text("utf-8")),
                             hessian="b2", hvp=True)
    assert source.count("def _checked(") == 1
    usual = source.split("def _checked(")[1].split("    sizes = ")[0]
    assert "(N, D) = X.shape\n        O, H = T.shape[1], W1.shape[1]\n" in usual
    assert "usual = (T.shape == (N, O)\n                 and W1.shape == (D, H)\n" in usual
    assert "    if usual:\n        return arrays\n" in usual  # after the try
    assert " for " not in usual.split('"""')[2]
    for head in ("def forward(X, T, W1, b1, W2, b2):", "def hessian(**inputs):",
                 "def hvp(v, /, **inputs):"):
        body = source.split(head)[1].split('"""')[2].strip().splitlines()
        assert body[0].startswith("(X, T, W1, b1, W2, b2) = _checked("), body[0]
    assert max(len(line) for line in source.splitlines()) <= 79


# ---------------------------------------------------------------- float32 ---

FLOAT32_PROBLEMS = {
    "self attention": "X: N x D\nWq, Wk, Wv: D x K\nS = (X @ Wq) @ (X @ Wk).T / sqrt(K)\n"
                      "f = sum((softmax(S, axis=1) @ (X @ Wv)) ** 2)\nwrt Wq, Wk, Wv\n",
    "cross attention": "X: N x D\nY: M x D\nWq, Wk: D x K\n"
                       "P = softmax((X @ Wq) @ (Y @ Wk).T / sqrt(K), axis=1)\n"
                       "f = sum(P @ Y)\nwrt Wq, Wk\n",
    "masked attention": "X: N x D\nM: N x N\nWq, Wk: D x K\n"
                        "S = (X @ Wq) @ (X @ Wk).T / sqrt(K) + M\n"
                        "f = sum(softmax(S, axis=1) * M)\nwrt Wq, Wk\n",
    "sqrt of a dimension": "x: K\nf = sum(x) / sqrt(K) + log(K) * sum(x ** 2)\n",
    "Gaussian process": "K: N x N spd\ny: N\n"
                        "f = y @ solve(K, y) / 2 + logdet(K) / 2 + N / 2 * log(2 * 3.14159)\n"
                        "wrt K\n",
    "variable exponent": "x: N\np: scalar\nf = sum(x ** p) + sum(2 ** x) + sum(x ** x)\n",
    "Gaussian density": "x, mu: N\ns: scalar\n"
                        "f = sum(exp(-(x - mu) ** 2 / (2 * s ** 2)) / sqrt(2 * 3.14159 * s ** 2))\n",
    "Gaussian log-density": "x, mu: N\nS: N x N spd\n"
                            "f = -(x - mu) @ inv(S) @ (x - mu) / 2 - logdet(S) / 2"
                            " - N / 2 * log(2 * 3.14159)\n",
    "zero": "v: N\nf = sum(v - v)\n",
    "constant gradient": "a: scalar\nx: N\nf = a * N + sum(x)\n",
}


def _float32_outputs(problem, inputs) -> dict:
    """Every output of the module: value, gradients, and for a scalar
    function the Hessian by the first variable and the HVP, else the
    Jacobian."""
    scalar = not problem.output.shape
    module = matcalc.compile(problem, hessian=problem.wrt[0] if scalar else None,
                             hvp=scalar, jacobian=not scalar)
    value = module.forward(*(inputs[n] for n in module.INPUTS))[0]
    dout = [] if scalar else [np.ones(np.shape(value), np.float32)]
    value, grads = module.value_and_grad(*dout, **inputs)
    out = {"value": value, **{"d" + k: g for k, g in grads.items()}}
    if scalar:
        out["H"] = module.hessian(**inputs)
        v = {w: np.ones_like(inputs[w]) for w in problem.wrt}
        hv = module.hvp(v if len(v) > 1 else v[problem.wrt[0]], **inputs)
        out.update((f"Hv{k}", x) for k, x in (hv.items() if isinstance(hv, dict) else [("", hv)]))
    else:
        jac = module.jacobian(**inputs)
        out.update((f"J{k}", x) for k, x in (jac.items() if isinstance(jac, dict)
                                              else [("", jac)]))
    return out


def _as_float32(values: dict) -> dict:
    """The floating inputs in float32 (integer inputs, indices, as they are)."""
    return {k: v if np.asarray(v).dtype.kind == "i" else
            np.asarray(v, np.float32) if np.ndim(v) else np.float32(v)
            for k, v in values.items()}


def _assert_float32(outputs: dict):
    wrong = {k: np.asarray(x).dtype.name for k, x in outputs.items()
             if np.asarray(x).dtype != np.float32}
    assert not wrong, f"not float32: {wrong}"


@pytest.mark.parametrize("text", FLOAT32_PROBLEMS.values(), ids=FLOAT32_PROBLEMS.keys())
def test_float32_inputs_give_float32_outputs(text):
    p = matcalc.parse(text)
    values = draw(p, sizes(p), np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outputs = _float32_outputs(p, _as_float32(values))
    _assert_float32(outputs)


def test_a_zero_result_has_the_inputs_type_and_shape():
    module = matcalc.compile("v: N\nf = sum(v - v)\n")
    for dtype in (np.float32, np.float64):
        value, grads = module.value_and_grad(v=np.ones(3, dtype))
        assert type(value) is dtype and value == 0
        assert grads["v"].dtype == dtype and grads["v"].shape == (3,)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.mc")), ids=lambda p: p.stem)
def test_every_example_keeps_float32(path):
    p = matcalc.parse(path.read_text("utf-8"))
    values = draw(p, sizes(p), np.random.default_rng(0))
    _assert_float32(_float32_outputs(p, _as_float32(values)))


@pytest.mark.parametrize("seed", range(0, 240, 3))
def test_generated_problems_keep_float32(seed):
    gp = build_problem(RandomSource(seed))
    p = matcalc.parse(gp.text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # float32 may overflow; the type is the point
        _assert_float32(_float32_outputs(p, _as_float32(gp.inputs())))


# -------------------------------------------------------------- edge sizes ---

def test_a_zero_denominator_is_nan_in_forward_and_backward_alike():
    """Sample variance at N = 1: NumPy's 0 / 0 in both passes, not a
    ZeroDivisionError (`2 / (-1 + N)`) in the backward only."""
    module = matcalc.compile("x: N\nf = sum((x - mean(x)) ** 2) / (N - 1)\n",
                             hessian="x", hvp=True)
    for dtype in (np.float32, np.float64):
        x = np.array([0.5], dtype)
        with pytest.warns(RuntimeWarning):
            value, grads = module.value_and_grad(x=x)
        with pytest.warns(RuntimeWarning):
            hessian = module.hessian(x=x)
        with pytest.warns(RuntimeWarning):
            hv = module.hvp(np.ones(1, dtype), x=x)
        assert np.isnan(value) and np.isnan(grads["x"]).all()
        assert np.isnan(hessian).all() and np.isnan(hv).all()
        assert grads["x"].dtype == hessian.dtype == hv.dtype == dtype
        x = np.array([0.5, 1.5, 2.5], dtype)       # and at N = 3 the usual numbers
        value, grads = module.value_and_grad(x=x)
        assert value == pytest.approx(1.0)
        np.testing.assert_allclose(grads["x"], [-1, 0, 1])


def test_dout_of_a_scalar_function_must_be_a_scalar():
    """A dout of the inputs' shape would scale every gradient entrywise into
    the wrong shape; it is refused, naming dout."""
    m = matcalc.compile(matcalc.problem("sum(X @ w)", X="N x D", w="D"))
    X, w = np.ones((4, 3)), np.ones(3)
    with pytest.raises(ValueError, match="dout: expected a scalar"):
        m.value_and_grad(np.ones((4, 3)), X=X, w=w)
    value, grads = m.value_and_grad(2.0, X=X, w=w)
    np.testing.assert_allclose(grads["w"], 2 * X.sum(axis=0))


def test_hvp_direction_with_an_unknown_name_is_refused():
    m = matcalc.compile(matcalc.problem("sum(sin(X @ w + c))", X="N x D", w="D", c="scalar",
                                        wrt="w, c"), hvp=True)
    X, w = np.ones((4, 3)), np.ones(3)
    with pytest.raises(TypeError, match="v\\['q'\\]"):
        m.hvp({"w": w, "c": 1.0, "q": 1.0}, X=X, w=w, c=0.5)


def test_a_ragged_list_names_its_input():
    m = matcalc.compile(matcalc.problem("sum(X @ w)", X="N x D", w="D"))
    with pytest.raises(ValueError, match="^X: "):
        m.value_and_grad(X=[[1.0, 2.0], [3.0]], w=np.ones(2))


# ------------------------------------------ every target checks alike ---

# (target, library of the arrays): each code target on its own arrays, the
# array-API target on every library it runs on.
TARGETS = [("numpy", "numpy"), ("torch", "torch"), ("jax", "jax"), ("array-api", "numpy"),
           ("array-api", "strict"), ("array-api", "torch"), ("array-api", "jax")]
TARGET_IDS = [f"{t}-{lib}" for t, lib in TARGETS]


def _on(library: str):
    """(to the library, back to NumPy) for arrays of NumPy's types."""
    from corpus_checks import backend
    to, back, _ = backend(library)
    return to, back


@pytest.mark.parametrize("target, library", TARGETS, ids=TARGET_IDS)
@pytest.mark.parametrize("given", ["float32 X", "int64 X"])
def test_mixed_types_are_promoted_on_every_target(target, library, given):
    """A float32 X (or an int64 one) beside float64 y and w is made
    float64 on every target, as NumPy's arithmetic makes it (PyTorch's
    module raised 'addmv input tensors must have the same dtype')."""
    module = compile_for(matcalc.parse(LOGISTIC), target)
    to, back = _on(library)
    inputs = _logistic_inputs()
    want_value, want = matcalc.compile(LOGISTIC).value_and_grad(**inputs)
    X = inputs["X"].astype(np.float32) if given == "float32 X" else np.round(3 * inputs["X"])
    if given == "int64 X":
        want_value, want = matcalc.compile(LOGISTIC).value_and_grad(
            **{**inputs, "X": X.astype(np.float64)})
    value, grads = module.value_and_grad(X=to(X.astype(np.int64) if given == "int64 X" else X),
                                         y=to(inputs["y"]), w=to(inputs["w"]))
    assert back(grads["w"]).dtype == np.float64
    rtol = 1e-6 if given == "float32 X" else 1e-12  # X rounded to float32 first
    np.testing.assert_allclose(float(back(value)), want_value, rtol=rtol)
    np.testing.assert_allclose(back(grads["w"]), want["w"], rtol=rtol)


@pytest.mark.parametrize("target, library", TARGETS, ids=TARGET_IDS)
def test_complex_input_is_refused_by_name_on_every_target(target, library):
    """Complex numbers are refused (PyTorch's module dropped the imaginary
    part: a float result, silently wrong)."""
    module = compile_for(matcalc.parse(LOGISTIC), target)
    to, _ = _on(library)
    inputs = {n: to(x) for n, x in _logistic_inputs().items()}
    inputs["X"] = to(_logistic_inputs()["X"].astype(np.complex64))
    with pytest.raises(TypeError, match=r"^X: expected an array of real numbers, got "
                                        r"\S*complex64$"):
        module.value_and_grad(**inputs)


@pytest.mark.parametrize("target, library", TARGETS, ids=TARGET_IDS)
@pytest.mark.parametrize("name, value, what", [("w", None, "None"), ("b", None, "None"),
                                               ("w", "abc", "'abc'")])
def test_no_numbers_is_refused_by_name_on_every_target(target, library, name, value, what):
    """None or text, for an array or a scalar input, is a TypeError naming
    the input (the array-API module read None as nan: `w: expected shape
    (D,) = (3,), got ()`, and a scalar input b silently nan)."""
    source = LOGISTIC.replace("w: D\n", "w: D\nb: scalar\n").replace(
        "(X @ w)", "(X @ w + b)").replace("wrt w", "wrt w, b")
    module = compile_for(matcalc.parse(source), target)
    to, _ = _on(library)
    inputs = {n: to(x) for n, x in {**_logistic_inputs(), "b": np.array(0.5)}.items()}
    with pytest.raises(TypeError, match=f"^{name}: expected an array of real numbers, "
                                        f"got {what}$"):
        module.value_and_grad(**{**inputs, name: value})


@pytest.mark.parametrize("target, library", TARGETS, ids=TARGET_IDS)
def test_a_fixed_index_needs_its_size_on_entry(target, library):
    """X[:, 5] of X: N x D needs D ≥ 6: `_checked` says so, where forward
    raised a raw IndexError (JAX clamped the index: a wrong number)."""
    module = compile_for(matcalc.parse("X: N x D\nf = sum(X[:, 5] ** 2)"), target)
    to, back = _on(library)
    with pytest.raises(ValueError, match=r"^X: D must be at least 6, got 3$"):
        module.value_and_grad(X=to(np.ones((4, 3))))
    X = np.arange(24.0).reshape(4, 6)
    value, grads = module.value_and_grad(X=to(X))
    assert float(back(value)) == np.sum(X[:, 5] ** 2)
    np.testing.assert_array_equal(back(grads["X"])[:, 5], 2 * X[:, 5])


@pytest.mark.parametrize("target", ["numpy", "array-api", "torch", "jax"])
def test_a_wrong_shape_reads_alike_on_every_target(target):
    """The torch and jax modules wrote `b2: expected shape (O,), got (3,)`,
    without the size O is bound to; every target now gives NumPy's message."""
    module = compile_for(matcalc.parse((EXAMPLES / "mlp.mc").read_text("utf-8")), target)
    values = dict(X=np.ones((4, 3)), T=np.ones((4, 2)), W1=np.ones((3, 5)), b1=np.ones(5),
                  W2=np.ones((5, 2)), b2=np.ones(3))
    with pytest.raises(ValueError, match=r"^b2: expected shape \(O,\) = \(2,\), got \(3,\)$"):
        module.value_and_grad(**values)
    with pytest.raises(ValueError, match=r"^X: expected shape \(N, D\), got \(0, 3\) "
                                         r"\(sizes are at least 1\)$"):
        module.value_and_grad(**{**values, "X": np.ones((0, 3))})
