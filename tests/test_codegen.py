"""The generated NumPy module: numbers, interface, determinism, hygiene."""

from __future__ import annotations

import ast
import builtins
import keyword
import os
import subprocess
import sys

import numpy as np
import pytest

import matcalc

from conftest import AFFINE_SOURCE, EXAMPLES, MLP, ROOT


def mlp_inputs(seed=0, N=7, D=5, H=4, O=3):
    rng = np.random.default_rng(seed)
    return dict(X=rng.standard_normal((N, D)), T=rng.standard_normal((N, O)),
                W1=rng.standard_normal((D, H)), b1=rng.standard_normal(H),
                W2=rng.standard_normal((H, O)), b2=rng.standard_normal(O))


def mlp_by_hand(X, T, W1, b1, W2, b2):
    """The network of examples/mlp.mc, forward and backward, written out."""
    N = X.shape[0]
    Z1 = X @ W1 + b1
    A1 = np.maximum(Z1, 0)
    Y = A1 @ W2 + b2
    loss = np.sum((Y - T) ** 2) / N
    dY = 2 * (Y - T) / N
    dW2 = A1.T @ dY
    db2 = dY.sum(axis=0)
    dZ1 = (dY @ W2.T) * (Z1 > 0)
    dW1 = X.T @ dZ1
    db1 = dZ1.sum(axis=0)
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


@pytest.fixture(scope="module")
def mlp_module(mlp_problem):
    return matcalc.compile(mlp_problem)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mlp_matches_hand_written_numpy(mlp_module, seed):
    inputs = mlp_inputs(seed, N=3 + seed, D=4, H=5 + seed, O=2)
    loss, grads = mlp_module.value_and_grad(**inputs)
    want_loss, want = mlp_by_hand(**inputs)
    assert np.ndim(loss) == 0
    np.testing.assert_allclose(loss, want_loss, rtol=1e-12)
    assert list(grads) == ["W1", "b1", "W2", "b2"]
    for name in want:
        assert grads[name].shape == inputs[name].shape
        np.testing.assert_allclose(grads[name], want[name], rtol=1e-10, atol=1e-12)


def test_forward_backward_interface(mlp_module):
    inputs = mlp_inputs()
    assert mlp_module.INPUTS == ("X", "T", "W1", "b1", "W2", "b2")
    assert mlp_module.WRT == ("W1", "b1", "W2", "b2")
    loss, cache = mlp_module.forward(*(inputs[n] for n in mlp_module.INPUTS))
    grads = mlp_module.backward(cache)
    assert isinstance(grads, tuple) and len(grads) == 4
    _, want = mlp_by_hand(**inputs)
    for name, g in zip(mlp_module.WRT, grads):
        np.testing.assert_allclose(g, want[name], rtol=1e-10, atol=1e-12)
    # backward does not consume the cache: it can run twice
    for a, b in zip(grads, mlp_module.backward(cache)):
        np.testing.assert_array_equal(a, b)


def test_value_and_grad_keyed_by_wrt(mlp_problem):
    for wrt in (["W2"], ["b1", "W1"], ["X", "T", "b2"]):
        module = matcalc.compile(mlp_problem, wrt=wrt)
        assert module.WRT == tuple(wrt)
        inputs = mlp_inputs()
        _, grads = module.value_and_grad(**inputs)
        assert list(grads) == wrt
        for name in wrt:
            assert grads[name].shape == inputs[name].shape


def test_backward_scales_by_dout_for_scalar_functions(mlp_module):
    inputs = mlp_inputs()
    _, cache = mlp_module.forward(*(inputs[n] for n in mlp_module.INPUTS))
    plain = mlp_module.backward(cache)
    scaled = mlp_module.backward(cache, 2.5)
    for a, b in zip(plain, scaled):
        np.testing.assert_allclose(b, 2.5 * a)
    explicit_one = mlp_module.backward(cache, 1.0)
    for a, b in zip(plain, explicit_one):
        np.testing.assert_allclose(a, b)
    _, grads = mlp_module.value_and_grad(-3.0, **inputs)
    for name, a in zip(mlp_module.WRT, plain):
        np.testing.assert_allclose(grads[name], -3.0 * a)


def test_array_valued_function_requires_dout(affine_problem):
    module = matcalc.compile(affine_problem)
    rng = np.random.default_rng(0)
    X, W, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    S, cache = module.forward(X, W, b)
    np.testing.assert_allclose(S, X @ W + b)
    with pytest.raises(TypeError, match="dout"):
        module.backward(cache)
    with pytest.raises(TypeError):
        module.value_and_grad(X=X, W=W, b=b)
    dS = rng.standard_normal((4, 2))
    dX, dW, db = module.backward(cache, dS)
    np.testing.assert_allclose(dX, dS @ W.T)
    np.testing.assert_allclose(dW, X.T @ dS)
    np.testing.assert_allclose(db, dS.sum(axis=0))
    value, grads = module.value_and_grad(dS, X=X, W=W, b=b)
    assert list(grads) == ["X", "W", "b"]
    np.testing.assert_allclose(grads["W"], X.T @ dS)


def test_module_source_compiles_and_has_docstring(mlp_problem):
    source = matcalc.codegen(mlp_problem)
    code = compile(source, "mlp_generated.py", "exec")
    assert code is not None
    tree = ast.parse(source)
    doc = ast.get_docstring(tree)
    assert doc and "loss" in doc and "matcalc" in doc
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert {"forward", "backward", "value_and_grad"} <= set(functions)
    for fn in functions.values():
        assert ast.get_docstring(fn), f"{fn.name} has no docstring"
    assert [a.arg for a in functions["forward"].args.args] == list(mlp_problem.variables)
    # a stand-alone module: it imports only numpy
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [alias.name for n in imports for alias in n.names] == ["numpy"]
    module = matcalc.compile(mlp_problem)
    assert module.source == source


def test_generation_is_deterministic(mlp_problem):
    first = matcalc.codegen(mlp_problem)
    again = matcalc.codegen(matcalc.parse(MLP.read_text("utf-8"), str(MLP)))
    assert first.encode() == again.encode()


def test_generation_is_deterministic_across_processes():
    # Set and dict iteration (and object addresses: a set of nodes) must not
    # leak into the output: generate under two hash seeds and compare the
    # bytes, HVP modules too (a factoring pivot among ties once varied).
    script = ("import sys, matcalc\n"
              "for path in sys.argv[1:]:\n"
              "    text = open(path, encoding='utf-8').read()\n"
              "    sys.stdout.write(matcalc.codegen(text))\n"
              "    sys.stdout.write(str(matcalc.grad(text)))\n"
              "    if 'sigmoid' in text or 'exp(' in text:\n"
              "        sys.stdout.write(matcalc.codegen(text, hvp=True))\n")
    paths = [str(p) for p in sorted(EXAMPLES.glob("*.mc"))]
    outputs = []
    for hashseed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        proc = subprocess.run([sys.executable, "-c", script, *paths], capture_output=True,
                              env=env, cwd=ROOT, timeout=120)
        assert proc.returncode == 0, proc.stderr.decode()
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1]
    assert b"def backward" in outputs[0]


def code_of(source: str) -> str:
    """The module's code without its docstrings and comments."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body.pop(0)
    return ast.unparse(tree)


def test_forward_intermediates_are_not_recomputed(mlp_problem):
    source = matcalc.codegen(mlp_problem)
    code = code_of(source)
    assert source.count("np.maximum") == 1
    assert code.count("np.maximum") == 1
    assert code.count("X @ W1") == 1
    tree = ast.parse(source)
    backward = next(n for n in tree.body if isinstance(n, ast.FunctionDef)
                    and n.name == "backward")
    # backward uses what forward cached; it evaluates no nonlinearity again
    calls = {ast.unparse(n.func) for n in ast.walk(backward) if isinstance(n, ast.Call)}
    assert "np.maximum" not in calls


def test_shared_sigmoid_is_computed_once():
    p = matcalc.problem("sum(sigmoid(X @ W) * Y) + sum(sigmoid(X @ W) ** 2)",
                        X="N x D", W="D x H", Y="N x H")
    code = code_of(matcalc.codegen(p))
    assert code.count("= _sigmoid(") == 1
    assert code.count("X @ W") == 1
    assert matcalc.check(p).ok


# ------------------------------------------------------------ identifiers ---

AWKWARD = {
    "lambda": "N x D", "np": "D", "class": "scalar", "input": "N", "print": "N x D",
    "forward": "D", "cache": "scalar", "dout": "N", "INPUTS": "D", "value": "N",
    "len": "N", "def": "D", "None_": "D", "t0": "D", "dnp": "D", "grads": "N",
    "match": "scalar", "inputs": "N",
}
AWKWARD_F = ("sum((lambda @ np + class * input) ** 2) + sum(print * forward) * cache"
             " + dout @ value + sum(t0 * dnp * def * None_) + len @ grads * match"
             " + sum(inputs)")


def _awkward_by_hand(v):
    """f and its gradients for AWKWARD_F, written out."""
    r = v["lambda"] @ v["np"] + v["class"] * v["input"]
    f = (np.sum(r ** 2) + np.sum(v["print"] * v["forward"]) * v["cache"]
         + v["dout"] @ v["value"] + np.sum(v["t0"] * v["dnp"] * v["def"] * v["None_"])
         + v["len"] @ v["grads"] * v["match"] + np.sum(v["inputs"]))
    g = {
        "lambda": np.outer(2 * r, v["np"]), "np": v["lambda"].T @ (2 * r),
        "class": np.sum(2 * r * v["input"]), "input": 2 * r * v["class"],
        "print": np.ones_like(v["print"]) * v["forward"] * v["cache"],
        "forward": v["cache"] * v["print"].sum(axis=0),
        "cache": np.sum(v["print"] * v["forward"]),
        "dout": v["value"], "value": v["dout"],
        "t0": v["dnp"] * v["def"] * v["None_"], "dnp": v["t0"] * v["def"] * v["None_"],
        "def": v["t0"] * v["dnp"] * v["None_"], "None_": v["t0"] * v["dnp"] * v["def"],
        "len": v["grads"] * v["match"], "grads": v["len"] * v["match"],
        "match": v["len"] @ v["grads"], "inputs": np.ones_like(v["inputs"]),
        "INPUTS": np.zeros_like(v["INPUTS"]),     # declared, unused
    }
    return f, g


def test_keywords_and_builtins_as_variable_names():
    decls = "".join(f"{n}: {s}\n" for n, s in AWKWARD.items())
    p = matcalc.parse(decls + f"f = {AWKWARD_F}\n")
    source = matcalc.codegen(p)
    compile(source, "awkward.py", "exec")
    tree = ast.parse(source)
    forward = next(n for n in tree.body if isinstance(n, ast.FunctionDef)
                   and n.name == "forward")
    params = [a.arg for a in forward.args.args]
    assert len(params) == len(AWKWARD) == len(set(params))
    for name in params:
        assert not keyword.iskeyword(name)
        assert not hasattr(builtins, name)
        assert name not in {"np", "forward", "backward", "value_and_grad", "cache", "dout",
                            "INPUTS", "WRT"}
    module = matcalc.compile(p)
    assert module.INPUTS == tuple(AWKWARD)          # the user's names, unmangled
    rng = np.random.default_rng(0)
    sizes = {"N": 3, "D": 4}
    values = {}
    for name, shape in AWKWARD.items():
        dims = tuple(sizes[d] for d in shape.split(" x ")) if shape != "scalar" else ()
        values[name] = rng.standard_normal(dims) if dims else float(rng.standard_normal())
    f, grads = module.value_and_grad(**values)
    want_f, want = _awkward_by_hand(values)
    np.testing.assert_allclose(f, want_f)
    assert list(grads) == list(AWKWARD)
    for name in AWKWARD:
        np.testing.assert_allclose(grads[name], want[name], err_msg=name, atol=1e-12)
    assert matcalc.check(p).ok


def test_dimensions_named_like_keywords():
    p = matcalc.parse("X: lambda x np\nw: np\nf = sum((X @ w) ** 2) / lambda\n")
    module = matcalc.compile(p)
    rng = np.random.default_rng(0)
    X, w = rng.standard_normal((5, 3)), rng.standard_normal(3)
    f, grads = module.value_and_grad(X=X, w=w)
    np.testing.assert_allclose(f, np.sum((X @ w) ** 2) / 5)
    np.testing.assert_allclose(grads["w"], 2 * X.T @ (X @ w) / 5)
    assert matcalc.check(p).ok


def test_variable_named_like_a_function_and_a_builtin():
    # `sum` names a variable where it is not called: the text round-trips and
    # the generated code renames it (a Python builtin) instead of shadowing.
    p = matcalc.parse("sum: N x K\nexp: N x K\nf = sum(exp(sum) * exp)\n")
    assert str(p.output.args[0]) == "sum(exp(sum) * exp)"
    module = matcalc.compile(p)
    assert "sum_" in module.source and "def forward(sum_, exp):" in module.source
    x, y = np.array([[0.1, 0.2]]), np.array([[1.0, -1.0]])
    f, grads = module.value_and_grad(sum=x, exp=y)
    np.testing.assert_allclose(f, np.sum(np.exp(x) * y))
    np.testing.assert_allclose(grads["sum"], np.exp(x) * y)
    assert matcalc.check(p).ok


def test_unicode_names():
    p = matcalc.parse("α: N\nβ: N\nﬁ: N\nfi: N\nf = α @ β + sum(ﬁ * fi)\n")
    module = matcalc.compile(p)
    rng = np.random.default_rng(0)
    values = {n: rng.standard_normal(4) for n in ("α", "β", "ﬁ", "fi")}
    f, grads = module.value_and_grad(**values)
    np.testing.assert_allclose(f, values["α"] @ values["β"] + np.sum(values["ﬁ"] * values["fi"]))
    np.testing.assert_allclose(grads["ﬁ"], values["fi"])
    np.testing.assert_allclose(grads["fi"], values["ﬁ"])
    np.testing.assert_allclose(grads["α"], values["β"])


# --------------------------------------------------------------- examples ---

@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.mc")), ids=lambda p: p.stem)
def test_examples_generate_working_modules(path):
    p = matcalc.parse(path.read_text("utf-8"), str(path))
    source = matcalc.codegen(p)
    compile(source, str(path), "exec")
    assert ast.get_docstring(ast.parse(source))
    module = matcalc.compile(p)
    assert module.WRT == p.wrt


def test_affine_source_interface():
    module = matcalc.compile(AFFINE_SOURCE)
    assert module.INPUTS == ("X", "W", "b") and module.WRT == ("X", "W", "b")


def _code_lines(source):
    """The executable lines of generated source (no docstrings or comments)."""
    body = source.split('"""', 2)[2]
    return [line for line in body.splitlines()
            if line.strip() and not line.strip().startswith(("#", '"""'))
            and '"""' not in line]


@pytest.mark.parametrize("expr, shapes, absent, present", [
    ("sum(diag(v) @ X * Y)", {"v": "N", "X": "N x D", "Y": "N x D"}, "np.diag", "[:, None]"),
    ("sum((inv(A) @ B) * C)", {"A": "N x N", "B": "N x K", "C": "N x K", "wrt": "C"},
     "np.linalg.inv", "np.linalg.solve"),
    ("sum(diag(A @ B) * 2)", {"A": "N x M", "B": "M x N"}, "np.diag", 'np.einsum("ij,ji", A, B)'),
    ("sum(tanh(inv(A) @ B))", {"A": "N x N", "B": "N x K"}, "multi_dot", "(g0 @ t1.T)"),
    ("sum(tanh(A.T @ inv(S) @ A))", {"A": "N x M", "S": "N x N"}, "t0.T @ (",
     "np.linalg.multi_dot"),
    ("x @ S @ y", {"x": "N", "S": "N x N", "y": "N"}, "np.ones", "np.outer"),
])
def test_generated_code_materialises_nothing_a_person_would_not(expr, shapes, absent, present):
    p = matcalc.problem(expr, **shapes)
    code = "\n".join(_code_lines(matcalc.codegen(p)))
    assert absent not in code and present in code
    assert matcalc.check(p).ok


@pytest.mark.parametrize("expr, shapes", [
    ("N / 2 * logdet(S) + trace(solve(S, X.T @ X)) / 2", {"X": "N x D", "S": "D x D spd"}),
    ("logdet(A) + sum(solve(A, B) ** 2)", {"A": "N x N", "B": "N x K"}),
    ("sum(inv(A)) + sum(solve(A, b))", {"A": "N x N", "b": "N"}),
])
def test_each_matrix_is_factorised_once(expr, shapes):
    # the gradient needs inv(A) anyway, so solve(A, B) becomes inv(A) @ B
    p = matcalc.problem(expr, **shapes)
    code = "\n".join(_code_lines(matcalc.codegen(p)))
    assert code.count("np.linalg.inv(") == 1 and "np.linalg.solve" not in code
    assert matcalc.check(p).ok


def test_gaussian_nll_is_the_hand_written_code():
    # f = N/2 logdet S + tr(S⁻¹C)/2: one inverse, one product for S⁻¹C in
    # forward and one for S⁻¹CS⁻¹ in backward, which is symmetric as it stands
    p = matcalc.problem("N / 2 * logdet(S) + trace(solve(S, X.T @ X)) / 2",
                        X="N x D", S="D x D spd", wrt="S")
    code = "\n".join(_code_lines(matcalc.codegen(p)))
    assert code.count(" @ ") == 3 and ".T @ t" not in code.split("def backward")[1]


MF = ("sum((X - U @ V.T) ** 2) + lam * (sum(U ** 2) + sum(V ** 2))",
      {"X": "m x n", "U": "m x k", "V": "n x k", "lam": "scalar", "wrt": "U, V"})


def test_matrix_factorisation_is_the_hand_written_code():
    # the residual is computed into the product U Vᵀ in place (NumPy reuses a
    # temporary only on the left of '-'), its squares are summed in one pass,
    # and its adjoint -2 R, which only feeds the products R V and Rᵀ U,
    # is never made: the -2 goes on them
    p = matcalc.problem(MF[0], **MF[1])
    code = _code_lines(matcalc.codegen(p))
    assert "t0 = U @ V.T" in [c.strip() for c in code]
    assert "np.subtract(X, t0, out=t0)" in [c.strip() for c in code]
    assert not any(line.strip().endswith("= -2 * t0") for line in code)
    assert any('np.vdot(t0, t0)' in line for line in code)  # Σ R², no R ** 2

    assert matcalc.check(p).ok
    module = matcalc.compile(p)
    rng = np.random.default_rng(0)
    inputs = dict(X=rng.standard_normal((5, 4)), U=rng.standard_normal((5, 2)),
                  V=rng.standard_normal((4, 2)), lam=0.1)
    before = {k: np.copy(v) for k, v in inputs.items()}
    value, grads = module.value_and_grad(**inputs)
    R = inputs["U"] @ inputs["V"].T - inputs["X"]
    np.testing.assert_allclose(value, (R ** 2).sum() + 0.1 * ((inputs["U"] ** 2).sum()
                                                              + (inputs["V"] ** 2).sum()))
    np.testing.assert_allclose(grads["U"], 2 * (R @ inputs["V"] + 0.1 * inputs["U"]))
    for k in before:  # no input is written to
        np.testing.assert_array_equal(inputs[k], before[k])


def test_a_product_subtracted_in_place_takes_the_widest_input_type():
    # t0 = U @ V.T, then X - t0 into t0: with U, V float32 and X float64,
    # t0 is float64 only because _checked gives every input one type
    module = matcalc.compile(matcalc.problem(MF[0], **MF[1]))
    rng = np.random.default_rng(1)
    X = rng.standard_normal((5, 4))
    U, V = (rng.standard_normal(s).astype(np.float32) for s in ((5, 2), (4, 2)))
    value, grads = module.value_and_grad(X=X, U=U, V=V, lam=0.1)
    R = U.astype(float) @ V.T.astype(float) - X
    assert grads["U"].dtype == np.float64
    np.testing.assert_allclose(value, (R ** 2).sum() + 0.1 * ((U.astype(float) ** 2).sum()
                                                              + (V.astype(float) ** 2).sum()),
                               rtol=1e-12)


def test_a_scaled_array_feeding_other_operations_is_kept():
    # dt1 = 2/N t1 also feeds a column sum, so it is computed once, as written
    code = _code_lines(matcalc.codegen(MLP.read_text("utf-8")))
    assert "dt1 = 2 / N * t1" in [c.strip() for c in code]


def test_a_long_in_place_update_wraps_within_79_columns():
    long = {"X" * 30: "m x n", "U" * 30: "m x k", "V" * 30: "n x k"}
    x, u, v = long
    p = matcalc.problem(f"sum((exp({x}) - {u} @ {v}.T) ** 2)", **long)
    source = matcalc.codegen(p)
    assert "np.subtract(" in source
    assert max(len(line) for line in source.splitlines()) <= 79
    assert matcalc.check(p).ok


@pytest.mark.parametrize("expr", ["trace(A @ B)", "trace(A @ B @ C) * trace(A @ B)",
                                  "trace(inv(A) @ C)"])
def test_trace_of_a_product_is_never_formed(expr):
    # tr(A B) = Σ A ⊙ Bᵀ: n² products where the matrix product takes n³
    p = matcalc.problem(expr, A="N x N", B="N x N", C="N x N")
    code = _code_lines(matcalc.codegen(p))
    assert any('np.einsum("ij,ji", ' in line for line in code)
    assert not any("np.trace(" in line and "@" in line for line in code)
    assert matcalc.check(p).ok


def test_in_place_update_takes_numpys_result_type():
    # the product that a - P is computed into is made in the inputs' floating
    # type: integer factors and mixed precisions give what NumPy gives
    module = matcalc.compile(matcalc.problem(MF[0].split(" + lam")[0], X="m x n", U="m x k",
                                             V="n x k"))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 3))
    U, V = rng.integers(0, 5, (4, 2)), rng.integers(0, 5, (3, 2))
    for x, u, v in [(X, U, V), (X.astype(np.float32), U.astype(np.float32), V.astype(np.float32)),
                    (X.astype(np.float32), U.astype(np.float64), V.astype(np.float32))]:
        value, grads = module.value_and_grad(X=x, U=u, V=v)
        R = x - u @ v.T
        assert grads["X"].dtype == np.result_type(R, 1.0)
        np.testing.assert_allclose(grads["X"], 2 * R, rtol=1e-6)


@pytest.mark.parametrize("target", ["numpy", "array-api", "torch", "jax"])
def test_generated_lines_fit_79_columns(target):
    """PEP 8's line length in every example's module, with its HVP."""
    long = []
    for path in sorted(EXAMPLES.glob("*.mc")):
        text = path.read_text("utf-8")
        for options in ({}, {"hvp": True}):
            try:
                source = matcalc.codegen(text, target=target, **options)
            except matcalc.MatcalcError:  # no HVP of a non-scalar function
                continue
            long += [f"{path.name}: {line}" for line in source.splitlines() if len(line) > 79]
    assert not long, "\n".join(long[:5])
