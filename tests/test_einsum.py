"""Contractions of any order (issue 16): einsum, `@` on stacks of matrices
and permutations of axes (`ops/einsum.py`, `ops/permute.py`).

Every problem of the corpus (`einsum_corpus.py`) is checked against finite
differences and against `jax.grad` of the same text read as jax.numpy; the
generated NumPy module runs in float32 and float64, the array-API module on
array-api-strict, PyTorch and JAX give the NumPy module's values; the text
reads back; HVPs and Hessians of arrays of three axes match finite
differences; matrix problems print in matrix notation; bad input is
refused with its place.
"""

from __future__ import annotations


import numpy as np
import pytest

import matcalc
from matcalc.checks.verify import draw, sizes
from matcalc.targets.latex import to_latex
from matcalc.targets.unicode import to_unicode
from corpus_checks import (TARGET_CHECKS, assert_refused, check_differences, close, kept,
                           per_target, reference)

from einsum_corpus import CORPUS

IDS = [c[0] for c in CORPUS]
PROBLEMS = kept({i: matcalc.problem(expr, **shapes)
                 for i, (expr, shapes) in zip(IDS, CORPUS)})


@pytest.mark.parametrize("name", IDS)
def test_gradient_matches_finite_differences(name):
    check_differences(PROBLEMS[name])


def _jax_function(expr: str, names: list[str]):
    """The text read as jax.numpy: f(*arrays) in the order of `names`."""
    import jax
    jnp = jax.numpy
    scope = {"einsum": jnp.einsum, "sum": jnp.sum, "sin": jnp.sin, "cos": jnp.cos,
             "tanh": jnp.tanh, "exp": jnp.exp, "log": jnp.log, "transpose": jnp.transpose,
             "swapaxes": jnp.swapaxes, "softmax": jax.nn.softmax}
    return lambda *arrays: eval(expr, scope, dict(zip(names, arrays)))  # noqa: S307


@pytest.mark.parametrize("name", IDS)
def test_value_and_gradient_match_jax(name):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    problem = PROBLEMS[name]
    inputs, value, grads = reference(problem)
    names = list(problem.variables)
    f = _jax_function(name, names)
    args = [jax.numpy.asarray(np.asarray(inputs[n], dtype=np.float64)) for n in names]
    want_value, want_grads = jax.jit(jax.value_and_grad(f, argnums=tuple(range(len(names)))))(
        *args)
    close(value, want_value)
    for name, want in zip(names, want_grads):
        close(grads[name], want)


@pytest.mark.parametrize("name", IDS)
def test_array_api_module_writes_no_einsum(name):
    assert "xp.einsum" not in matcalc.codegen(PROBLEMS[name], target="array-api")


@pytest.mark.parametrize("target, name", per_target(PROBLEMS))
def test_targets_give_the_numpy_modules_numbers(target, name):
    TARGET_CHECKS[target](PROBLEMS[name])


def _reads_back(problem, node):
    assert problem.expr(str(node)) is node


@pytest.mark.parametrize("name", IDS)
def test_text_reads_back(name):
    problem = PROBLEMS[name]
    _reads_back(problem, problem.output.args[0])
    for _, g in matcalc.grad(problem):
        _reads_back(problem, g)


# ------------------------------------------------------ second derivatives ---

SECOND = [("sum(tanh(X @ W) ** 2)", {"X": "B x T x D", "W": "D x K"}),
          ('sum(sin(einsum("bij,bjk->bik", P, C)))', {"P": "B x N x D", "C": "B x D x K"}),
          ("sum(exp(transpose(X, (1, 0, 2))) * Z)", {"X": "B x T x D", "Z": "T x B x D"}),
          ('sum(sin(einsum("bii->b", P)) * einsum("bij,bij->b", P, P))', {"P": "B x N x N"}),
          ('sum(sin(einsum("btd,dk,bk->bt", X, W, Y)))',
           {"X": "B x T x D", "W": "D x K", "Y": "B x K"})]


def _gradient_of(module, inputs, name):
    return lambda z: module.value_and_grad(**{**inputs, name: z})[1]


@pytest.mark.parametrize("expr, shapes", SECOND, ids=[s[0] for s in SECOND])
def test_hvp_of_arrays_of_three_axes(expr, shapes):
    problem = matcalc.problem(expr, **shapes)
    inputs = draw(problem, sizes(problem), np.random.default_rng(0))
    module = matcalc.compile(problem, hvp=True)
    rng = np.random.default_rng(1)
    v = {n: rng.standard_normal(np.shape(inputs[n])) for n in problem.wrt}
    got = module.hvp(v if len(v) > 1 else v[problem.wrt[0]], **inputs)
    got = got if len(v) > 1 else {problem.wrt[0]: got}
    h = 1e-6
    plus = module.value_and_grad(**{n: inputs[n] + h * v.get(n, 0) for n in inputs})[1]
    minus = module.value_and_grad(**{n: inputs[n] - h * v.get(n, 0) for n in inputs})[1]
    for name in problem.wrt:
        np.testing.assert_allclose(got[name], (plus[name] - minus[name]) / (2 * h),
                                   rtol=1e-5, atol=1e-7)


def test_hessian_of_an_array_of_three_axes_is_an_operator_and_an_array():
    problem = matcalc.problem("sum(tanh(X @ W) ** 2)", X="B x T x D", W="D x K")
    text = "\n".join(str(e) for e in [matcalc.hessian(problem, "X")])
    assert text
    from matcalc.cli import run
    inputs = draw(problem, sizes(problem), np.random.default_rng(0))
    module = matcalc.compile(problem, hessian="X")
    hessian = module.hessian(**inputs)
    x = inputs["X"]
    assert hessian.shape == x.shape * 2
    e = np.zeros_like(x)
    e[1, 2, 3] = 1e-6
    gradient = _gradient_of(module, inputs, "X")
    column = (gradient(x + e)["X"] - gradient(x - e)["X"]) / 2e-6
    np.testing.assert_allclose(hessian[1, 2, 3], column, rtol=1e-5, atol=1e-7)
    assert callable(run)


def test_hessian_layout_names_every_index_once(capsys, tmp_path):
    from matcalc.cli import run
    source = "X: B x T x D\nW: D x K\nf = sum(tanh(X @ W) ** 2)\nwrt X\n"
    path = tmp_path / "hessian.mc"
    path.write_text(source, "utf-8")
    run(["hessian", str(path)])
    layout = next(line for line in capsys.readouterr().out.splitlines() if "the array" in line)
    indices = layout[layout.index("[") + 1:layout.index("]")].split(", ")
    assert len(indices) == 6 and len(set(indices)) == 6


# ---------------------------------------------------------------- printing ---

@pytest.mark.parametrize("expr, shapes, text", [
    ('einsum("ij,jk->ik", A, B)', {"A": "N x D", "B": "D x K"}, "A @ B"),
    ('einsum("ij,kj->ik", A, C)', {"A": "N x D", "C": "K x D"}, "A @ C.T"),
    ('einsum("ii->", S)', {"S": "N x N"}, "trace(S)"),
    ('einsum("ii->i", S)', {"S": "N x N"}, "diag(S)"),
    ('einsum("i,j->ij", u, v)', {"u": "N", "v": "D"}, "outer(u, v)"),
    ('einsum("ij->ji", A)', {"A": "N x D"}, "A.T"),
    ('einsum("ij,ij->", A, A)', {"A": "N x D"}, "sum(A ** 2)"),
    ('einsum("i,ij,j->", u, A, v)', {"u": "N", "A": "N x D", "v": "D"}, "u @ A @ v"),
    ("X @ W", {"X": "B x T x D", "W": "D x K"}, "X @ W"),
    ('einsum("btd,dk->btk", X, W)', {"X": "B x T x D", "W": "D x K"}, "X @ W"),
    ('einsum("btd,kd->btk", X, W)', {"X": "B x T x D", "W": "K x D"}, "X @ W.T"),
    ("P @ C", {"P": "B x N x D", "C": "B x D x K"}, "P @ C"),
    ('einsum("btd->bd", X)', {"X": "B x T x D"}, "sum(X, axis=1)"),
    ("transpose(X, (0, 2, 1))", {"X": "B x T x D"}, "transpose(X, (0, 2, 1))"),
    ("swapaxes(X, 0, -1)", {"X": "B x T x D"}, "transpose(X, (2, 1, 0))"),
    ("X.T", {"X": "B x T x D"}, "transpose(X, (2, 1, 0))"),
    ("transpose(transpose(X, (1, 2, 0)), (2, 0, 1))", {"X": "B x T x D"}, "X"),
    ('einsum("bqd,bkd->bqk", X, Y)', {"X": "B x T x D", "Y": "B x S x D"},
     "X @ swapaxes(Y, -1, -2)"),
    ('einsum("bi,bj->bij", U, V)', {"U": "B x N", "V": "B x D"}, "U[:, :, None] * V[:, None]"),
    ('einsum("bhst,bhsd->bthd", P, V)', {"P": "B x H x T x T", "V": "B x H x T x D"},
     "transpose(swapaxes(P, -1, -2) @ V, (0, 2, 1, 3))"),
    ('einsum("bthd,bshd->bhts", Q, K)', {"Q": "B x T x H x D", "K": "B x T x H x D"},
     "transpose(Q, (0, 2, 1, 3)) @ transpose(K, (0, 2, 3, 1))"),
    ('einsum("bij,bjk,bkl->bil", P, C, R)', {"P": "B x N x D", "C": "B x D x K", "R": "B x K x M"},
     'einsum("ijk,ikl,ilm->ijm", P, C, R)'),
])
def test_matrix_notation_where_there_is_one(expr, shapes, text):
    problem = matcalc.problem(expr, **shapes)
    assert str(problem.output.args[0]) == text


def test_latex_and_unicode_write_index_notation():
    problem = matcalc.problem('einsum("btd,bsd->bts", X, Y)', X="B x T x D", Y="B x S x D")
    node = problem.output.args[0]
    assert to_latex(node) == r"\sum_{k} X_{ijk} Y_{ilk}"
    assert to_unicode(node) == "Σₖ X[i,j,k] Y[i,l,k]"


def test_generated_numpy_chooses_the_contraction_order():
    problem = matcalc.problem('sum(einsum("btd,dk,bk->bt", X, W, Y) ** 2)',
                              X="B x T x D", W="D x K", Y="B x K")
    source = matcalc.codegen(problem)
    assert "np.einsum(\n        \"ijk,kl,il->ij\", X, W, Y, optimize=['einsum_path', (1, 2)," in source
    batched = matcalc.codegen(matcalc.problem("sum(tanh(X @ W))", X="B x T x D", W="D x K"))
    assert "X @ W" in batched and "@ W.T" in batched


def test_broadcast_stack_of_size_one():
    problem = matcalc.problem("P @ C1", P="B x N x D", C1="1 x D x K")
    node = problem.output.args[0]
    assert node.shape == problem.variables["P"].shape[:2] + problem.variables["C1"].shape[2:]
    assert str(node) == "P @ C1"


# ------------------------------------------------------------------ errors ---

ERRORS = [
    ('einsum("ij,jk->ik", A)', "names 2 operands, got 1", 8),
    ('einsum("ij,jk->ik", A, A)', "index 'j' is D in operand 1 (N x D) but N in operand 2", 8),
    ('einsum("ijk,jk->i", A, A)', "operand 1 has 2 axes but its subscripts 'ijk' name 3", 8),
    ('einsum("i1,jk->i", A, A)', "'1' in 'i1,jk->i' is not a subscript", 8),
    ('einsum("ij,jk->iz", A, A.T)', "names 'z', which no operand has", 8),
    ('einsum("ij->ii", A)', "names 'i' twice", 8),
    ('einsum("ij->i->j", A)', "misplaced '->'", 8),
    ("einsum(A, A)", "einsum takes its subscripts first, as a string", 1),
    ("transpose(X, (0, 1))", "not a permutation of the 3 axes", 1),
    ("transpose(X, (0, 1, 1))", "not a permutation of the 3 axes", 1),
    ("swapaxes(X, 0, 3)", "axis 3 is out of range", 1),
    ("swapaxes(X, 0)", "swapaxes() takes (X, axis1, axis2)", 1),
    ("transpose(X, A)", "takes axes as integers", 1),
    ("X @ Y", "shape mismatch in '@': X is B x T x D but Y is 2 x D x K", 3),
    ("X @ A", "shape mismatch in '@': X is B x T x D but A is N x D", 3),
]


@pytest.mark.parametrize("expr, message, column", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_is_refused_with_its_place(expr, message, column):
    source = f"A: N x D\nX: B x T x D\nY: 2 x D x K\nf = sum({expr})\n"
    assert_refused(source, 4, len("f = sum(") + column, [message])
