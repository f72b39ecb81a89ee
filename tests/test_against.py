"""`matcalc.checks.against`: a hand-written backward function checked against the
derived gradients, on seed 004's network (examples/seed004*.{mc,py})."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

import matcalc
from matcalc import MatcalcError
from matcalc.checks.against import AgainstResult, check_against, load_function

from conftest import EXAMPLES, ROOT

HANDWRITTEN = EXAMPLES / "seed004_handwritten.py"
SPEC = f"{HANDWRITTEN}:backward"
FIXED = f"{HANDWRITTEN}:backward_fixed"


@pytest.fixture(scope="module")
def seed004():
    return matcalc.parse((EXAMPLES / "seed004.mc").read_text("utf-8"), "seed004.mc")


@pytest.fixture(scope="module")
def handwritten():
    spec = importlib.util.spec_from_file_location("seed004_handwritten", HANDWRITTEN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ seed 004 ---

def test_seed004_buggy_backward_names_dW2_and_what_follows(seed004):
    result = check_against(seed004, SPEC, dims={"N": 5, "O": 5})
    assert isinstance(result, AgainstResult)
    assert not result.ok and not result
    assert result.wrong == ["W1", "b1", "W2"]
    assert result.notes["W2"] == "shape (H,) but expected H x O"
    assert result.errors["W2"] == float("inf")
    assert 0.1 < result.errors["W1"] < np.inf and 0.1 < result.errors["b1"] < np.inf
    assert result.errors["b2"] < 1e-12
    text = str(result)
    assert "dW2  shape (H,) but expected H x O  WRONG" in text
    assert "db2  max rel. error" in text and text.splitlines()[4].endswith("ok")
    assert text.splitlines()[-1] == "wrong: dW1, db1, dW2"
    assert text.startswith(f"{SPEC} against matcalc's gradients (N=5, ")


def test_library_check_with_against_is_check_against(seed004, handwritten):
    """matcalc.check(p, against=f) is check_against(p, f), the function or its spec."""
    for function in (SPEC, handwritten.backward):
        result = matcalc.check(seed004, dims={"N": 5, "O": 5}, seed=3, against=function)
        expected = check_against(seed004, function, dims={"N": 5, "O": 5}, seed=3)
        assert isinstance(result, AgainstResult) and result.wrong == ["W1", "b1", "W2"]
        assert result.errors == expected.errors and result.notes == expected.notes
    fixed = matcalc.check(seed004, "W2", seed=1, against=handwritten.backward_fixed)
    assert fixed.ok and list(fixed.errors) == ["W2"]


def test_seed004_buggy_backward_at_distinct_sizes_stops_at_the_dW2_line(seed004):
    with pytest.raises(MatcalcError) as info:
        check_against(seed004, SPEC)
    message = str(info.value)
    assert "backward raised ValueError" in message
    assert "`dW2 = h_relu.T.dot(db2)`" in message
    assert "seed004_handwritten.py:" in message
    assert "(sizes N=3, D=4, O=5, H=6)" in message


def test_seed004_fixed_backward_passes(seed004, handwritten):
    for function in (FIXED, handwritten.backward_fixed):
        result = check_against(seed004, function)
        assert result.ok and result.wrong == []
        assert all(e < 1e-12 for e in result.errors.values())
        assert "WRONG" not in str(result)


def test_seed004_fixed_backward_passes_for_several_seeds_and_sizes(seed004, handwritten):
    for seed in range(3):
        assert check_against(seed004, handwritten.backward_fixed, seed=seed,
                             dims={"N": 1, "H": 2}).ok


def test_the_example_script_runs():
    out = subprocess.run([sys.executable, str(HANDWRITTEN)], capture_output=True,
                         text=True, encoding="utf-8", cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "dW2  shape (H,) but expected H x O  WRONG" in out.stdout
    assert "wrong: dW1, db1, dW2" in out.stdout
    assert out.stdout.rstrip().endswith("ok")


# ------------------------------------------------------- what may be returned ---

MLP_INPUTS = ("X", "T", "W1", "b1", "W2", "b2")


def mlp_backward(X, T, W1, b1, W2, b2):
    """A correct hand-written backward for examples/mlp.mc (mean over N)."""
    n = X.shape[0]
    z1 = X @ W1 + b1
    a1 = np.maximum(z1, 0)
    dy = 2 * (a1 @ W2 + b2 - T) / n
    dz1 = dy @ W2.T * (z1 > 0)
    return {"dW1": X.T @ dz1, "db1": dz1.sum(0), "dW2": a1.T @ dy, "db2": dy.sum(0)}


def test_mlp_correct_with_d_prefixed_keys(mlp_problem):
    assert check_against(mlp_problem, mlp_backward).ok


def test_mlp_missing_the_mean_is_wrong_everywhere(mlp_problem):
    def without_mean(**inputs):
        n = inputs["X"].shape[0]
        return {k: v * n for k, v in mlp_backward(**inputs).items()}
    result = check_against(mlp_problem, without_mean)
    assert result.wrong == ["W1", "b1", "W2", "b2"]


def test_generated_value_and_grad_passes_with_its_value(mlp_problem):
    module = matcalc.compile(mlp_problem)
    result = check_against(mlp_problem, module.value_and_grad)
    assert result.ok and result.value_error is not None and result.value_error < 1e-12
    assert "value" in str(result)


def test_a_wrong_value_is_reported(mlp_problem):
    module = matcalc.compile(mlp_problem)

    def off(**inputs):
        value, grads = module.value_and_grad(**inputs)
        return value + 1, grads
    result = check_against(mlp_problem, off)
    assert not result.ok and result.wrong == []
    assert result.value_error > 1e-3
    assert str(result).splitlines()[-1] == "wrong: the value"


def test_missing_gradient_is_wrong(mlp_problem):
    def partial(**inputs):
        grads = mlp_backward(**inputs)
        del grads["db2"]
        return grads
    result = check_against(mlp_problem, partial)
    assert result.wrong == ["b2"]
    assert result.notes["b2"] == "missing: no gradient returned"


def test_nan_and_non_numeric_gradients_are_wrong(mlp_problem):
    def bad(**inputs):
        grads = mlp_backward(**inputs)
        grads["dW1"] = grads["dW1"] * np.nan
        grads["db1"] = "oops"
        return grads
    result = check_against(mlp_problem, bad)
    assert result.wrong == ["W1", "b1"]
    assert result.notes["W1"].startswith("not finite")
    assert result.notes["b1"].startswith("not an array of numbers")


def test_complex_gradients_are_wrong_and_sys_exit_is_an_error(mlp_problem):
    """A gradient with an imaginary part passed (NumPy cast it away with a
    ComplexWarning), and a function calling sys.exit(0) ended check with
    exit status 0 and no output."""
    def imaginary(**inputs):
        grads = mlp_backward(**inputs)
        grads["dW1"] = grads["dW1"] + 5j
        return grads
    result = check_against(mlp_problem, imaginary)
    assert result.wrong == ["W1"] and result.notes["W1"].startswith("complex")

    def leaving(**inputs):
        raise SystemExit(0)
    with pytest.raises(MatcalcError, match="raised SystemExit: 0"):
        check_against(mlp_problem, leaving)


def test_transposed_gradient_names_both_shapes(mlp_problem):
    def transposed(**inputs):
        grads = mlp_backward(**inputs)
        grads["dW1"] = grads["dW1"].T
        return grads
    result = check_against(mlp_problem, transposed)
    assert result.notes["W1"] == "shape (H, D) but expected D x H"


def test_ambiguous_sizes_print_as_numbers(seed004, handwritten):
    def transposed(**inputs):
        grads = handwritten.backward_fixed(**inputs)
        grads["W2"] = grads["W2"].T
        return grads
    result = check_against(seed004, transposed, dims={"N": 5, "O": 5, "D": 3, "H": 4})
    assert result.notes["W2"] == "shape (5, H) but expected H x O"


def test_gradients_of_variables_outside_wrt_are_listed_not_checked(mlp_problem):
    def extra(**inputs):
        return {**mlp_backward(**inputs), "X": np.zeros(1)}
    result = check_against(mlp_problem, extra)
    assert result.ok and result.unchecked == ("X",)
    assert "not checked (not in wrt): dX" in str(result)


def test_the_function_gets_copies_of_the_inputs(mlp_problem):
    def mutating(**inputs):
        grads = mlp_backward(**inputs)
        for v in inputs.values():
            v *= 0
        return grads
    assert check_against(mlp_problem, mutating).ok


def test_inputs_are_keywords_named_as_declared(mlp_problem):
    seen = {}

    def spy(**inputs):
        seen.update(inputs)
        return mlp_backward(**inputs)
    check_against(mlp_problem, spy, dims={"N": 2, "D": 3, "H": 4, "O": 5})
    assert tuple(seen) == MLP_INPUTS
    assert seen["W1"].shape == (3, 4) and seen["b2"].shape == (5,)


def test_array_valued_function_gets_the_upstream_gradient(affine_problem):
    def affine_backward(X, W, b, dS):
        return {"X": dS @ W.T, "W": X.T @ dS, "b": dS.sum(axis=0)}
    assert check_against(affine_problem, affine_backward).ok

    def wrong_bias(X, W, b, dS):
        return {"X": dS @ W.T, "W": X.T @ dS, "b": dS.sum(axis=1)}
    result = check_against(affine_problem, wrong_bias, dims={"N": 3, "D": 4, "K": 5})
    assert result.wrong == ["b"] and result.notes["b"] == "shape (N,) but expected K"


def test_scalar_problem_sigmoid_chain():
    p = matcalc.parse((EXAMPLES / "sigmoid_chain.mc").read_text("utf-8"))

    def sig(z):
        return 1 / (1 + np.exp(-z))

    def chain(x, y, w1, b1, w2, b2, w3, b3):
        a1 = sig(w1 * x + b1)
        a2 = sig(w2 * a1 + b2)
        a3 = sig(w3 * a2 + b3)
        dz3 = 2 * (a3 - y) * a3 * (1 - a3)
        dz2 = dz3 * w3 * a2 * (1 - a2)
        dz1 = dz2 * w2 * a1 * (1 - a1)
        return {"w1": dz1 * x, "b1": dz1, "w2": dz2 * a1, "b2": dz2,
                "w3": dz3 * a2, "b3": dz3}
    assert check_against(p, chain).ok

    def forgot_sigmoid_prime(x, y, w1, b1, w2, b2, w3, b3):
        grads = chain(x, y, w1, b1, w2, b2, w3, b3)
        return {**grads, "w1": grads["w1"] * 4}
    assert check_against(p, forgot_sigmoid_prime).wrong == ["w1"]


def test_symmetric_variable_compares_the_symmetric_part():
    p = matcalc.parse("S: D x D symmetric\nA: D x D\nf = trace(A @ S)\nwrt S")
    assert check_against(p, lambda S, A: {"S": A.T}).ok            # unconstrained
    assert check_against(p, lambda S, A: {"S": (A + A.T) / 2}).ok  # symmetric
    assert not check_against(p, lambda S, A: {"S": 2 * A.T - np.diag(np.diag(A))}).ok


def test_tolerance(mlp_problem):
    def slightly_off(**inputs):
        return {k: v * (1 + 1e-5) for k, v in mlp_backward(**inputs).items()}
    assert not check_against(mlp_problem, slightly_off).ok
    assert check_against(mlp_problem, slightly_off, tol=1e-4).ok


# ---------------------------------------------------------------- bad specs ---

def test_load_function_from_file_and_module(tmp_path, monkeypatch):
    assert load_function(SPEC).__name__ == "backward"
    (tmp_path / "mybackprop.py").write_text("class Net:\n    @staticmethod\n"
                                            "    def backward(**kw):\n        return {}\n"
                                            "def grads(**kw):\n    return {}\n")
    monkeypatch.chdir(tmp_path)
    assert load_function("mybackprop:grads").__name__ == "grads"
    assert load_function("mybackprop:Net.backward").__name__ == "backward"
    assert load_function("mybackprop.py:grads").__name__ == "grads"
    assert load_function("matcalc.checks.verify:sizes") is matcalc.checks.verify.sizes


@pytest.mark.parametrize("spec, words", [
    ("backward", "expects MODULE:FUNCTION"),
    (":backward", "expects MODULE:FUNCTION"),
    (f"{HANDWRITTEN}:", "expects MODULE:FUNCTION"),
    ("examples/nope.py:backward", "no such file: examples/nope.py"),
    ("no_such_module_xyz:backward", "no module named 'no_such_module_xyz'"),
    (f"{HANDWRITTEN}:nothing", "has no function 'nothing'"),
    ("matcalc.checks.verify:DEFAULT_SIZES", "is a tuple, not a function"),
])
def test_bad_specs(spec, words):
    with pytest.raises(MatcalcError) as info:
        load_function(spec)
    assert words in str(info.value)


def test_module_that_fails_to_import(tmp_path, monkeypatch):
    (tmp_path / "broken_syntax.py").write_text("def f(:\n")
    (tmp_path / "broken_import.py").write_text("import no_such_dependency_xyz\n")
    (tmp_path / "broken_run.py").write_text("1 / 0\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MatcalcError, match="importing broken_syntax.py failed: SyntaxError"):
        load_function("broken_syntax.py:f")
    with pytest.raises(MatcalcError, match="importing module 'broken_import' failed: "
                                           "ModuleNotFoundError"):
        load_function("broken_import:f")
    with pytest.raises(MatcalcError, match="ZeroDivisionError"):
        load_function("broken_run:f")


def test_check_against_with_a_bad_spec_raises(seed004):
    with pytest.raises(MatcalcError, match="no such file"):
        check_against(seed004, "missing.py:backward")


def test_function_raising_is_a_matcalc_error(mlp_problem):
    def raises(**inputs):
        raise KeyError("W3")
    with pytest.raises(MatcalcError, match=r"raised KeyError: 'W3' at .*test_against.py:\d+ "
                                           r"`raise KeyError\(\"W3\"\)`"):
        check_against(mlp_problem, raises)


def test_wrong_signature_is_a_matcalc_error(mlp_problem):
    with pytest.raises(MatcalcError, match="raised TypeError"):
        check_against(mlp_problem, lambda X, W1: {})


@pytest.mark.parametrize("returned, words", [
    ([1, 2], "returned a list; expected a dict"),
    (None, "returned a NoneType; expected a dict"),
    ({"W3": 1}, "gradient named 'W3', which is not a variable"),
    ({1: 1}, "with the key 1"),
    ({"W1": 1, "dW1": 1}, "two gradients for W1"),
])
def test_bad_return_values(mlp_problem, returned, words):
    with pytest.raises(MatcalcError, match=words.replace("(", r"\(")):
        check_against(mlp_problem, lambda **kw: returned)


def test_not_a_function(mlp_problem):
    with pytest.raises(MatcalcError, match="expected a function"):
        check_against(mlp_problem, 42)


def test_bad_dims_are_matcalc_errors(mlp_problem):
    with pytest.raises(MatcalcError, match="not a dimension"):
        check_against(mlp_problem, mlp_backward, dims={"Q": 3})


# ------------------------------------------------------------- the error scale ---

REGRESSION = "X: N x D\ny: N\nw: D\nv: D\nf = sum((X @ w - y) ** 2) + 1e-3 * sum(v ** 2)\nwrt w, v"


def _regression_inputs(scale: float, at_optimum: bool = False) -> dict:
    rng = np.random.default_rng(1)
    X, y = 30 * rng.standard_normal((6, 3)), scale * rng.standard_normal(6)
    w = np.linalg.lstsq(X, y, rcond=None)[0] if at_optimum else rng.standard_normal(3)
    return {"X": X, "y": y, "w": w, "v": rng.standard_normal(3)}


def test_a_small_wrong_gradient_beside_a_large_loss_is_wrong():
    """dv = 1e-3 v (the factor 2 missing) beside a loss of about 1e7: the
    error is measured against dv's own size, not the loss's (was a pass)."""
    def backward(X, y, w, v):
        return {"w": 2 * X.T @ (X @ w - y), "v": 1e-3 * v}
    result = check_against(REGRESSION, backward, inputs=_regression_inputs(1e3))
    assert result.wrong == ["v"] and result.errors["v"] == pytest.approx(0.5)


def test_a_zero_gradient_computed_another_way_passes():
    """At the least-squares optimum ∂f/∂w is rounding noise: 2 XᵀX w − 2 Xᵀ y
    differs from matcalc's 2 Xᵀ (X w − y) in every digit and passes; one
    off by 1e-6 does not."""
    def expanded(X, y, w, v):
        return {"w": 2 * (X.T @ X) @ w - 2 * X.T @ y, "v": 2e-3 * v}
    inputs = _regression_inputs(1e3, at_optimum=True)
    result = check_against(REGRESSION, expanded, inputs=inputs)
    assert result.ok, str(result)

    def offset(X, y, w, v):
        return {"w": 2 * (X.T @ X) @ w - 2 * X.T @ y + 1e-6, "v": 2e-3 * v}
    assert check_against(REGRESSION, offset, inputs=inputs).wrong == ["w"]


def test_a_wrong_gradient_at_ties_and_kinks_is_wrong():
    """Integer data puts inputs on ties of max and kinks of relu: the
    rounding scale comes from float32, on the same branches, so a wrong
    gradient there is WRONG (moving the inputs to measure it changed the
    branches and floored the error at 1e8 times the gradient)."""
    ties = {"X": np.array([[1.0, 1, 0], [2, 2, 1], [3, 0, 3]]), "c": np.ones(3)}
    result = check_against("X: N x D\nc: N\nf = sum(max(X, axis=1) * c)\nwrt X",
                           lambda X, c: {"X": np.zeros_like(X)}, inputs=ties)
    assert result.wrong == ["X"] and result.errors["X"] == pytest.approx(1.0)
    kinks = {"X": np.array([[1.0, -1], [2, 1], [0, 3]]), "W": np.array([[1.0, 1], [1, 2]])}

    def backward(X, W):
        return {"W": -3 * X.T @ (X @ W > 0).astype(float)}
    result = check_against("X: N x D\nW: D x H\nf = sum(relu(X @ W))\nwrt W", backward,
                           inputs=kinks)
    assert result.wrong == ["W"]
