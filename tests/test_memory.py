"""No dense array that the user did not write.

A symbolic `eye`, `ones` or broadcast never becomes a dense array because a
scalar multiplies it or a rule moved it: the scale goes onto the products.
The structural test: for every generated problem of the property strategy,
every example and every benchmark problem, no array that the generated
value_and_grad or hvp allocates (`allocations.py`: every node the NumPy
code prints as an array, constructors and broadcasts included) is larger,
in elements at any assignment of the dimensions, than the largest array the
forward pass receives or computes, unless the user's text builds one (outer,
kron, eye, ones, zeros). Every rewrite rule added for this is checked
against a plain NumPy evaluation of the text and against finite
differences.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import warnings

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings

import matcalc
from matcalc.ad import second
from matcalc.ir.expr import Apply, Var, postorder
from matcalc.passes.program import Binding, Program

from allocations import allocations, described, excess
from conftest import EXAMPLES, ROOT, run_cli
from strategies import problems

EXAMPLES_COUNT = int(os.environ.get("MATCALC_MEMORY_EXAMPLES", "200"))

GENERATED = settings(max_examples=EXAMPLES_COUNT, deadline=None, derandomize=True,
                     database=None, suppress_health_check=list(HealthCheck))


def _bench(name: str):
    """A benchmark script, imported as a module (it runs nothing on import)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=None)
def benchmark_problems() -> dict[str, str]:
    """Every problem the benchmarks time, by name."""
    peers, gaussian = _bench("bench_peers"), _bench("bench_gaussian")
    return {"mlp": peers.MLP_PROBLEM.read_text("utf-8"), "logistic": peers.LOGISTIC_TEXT,
            "gauss": peers.GAUSS_TEXT, "factorisation": peers.MF_TEXT,
            "gaussian log-likelihood": gaussian.TEXT}


def assert_lean(text, hvp: bool = False) -> None:
    """value_and_grad (and, with `hvp`, the Hessian-vector product of a
    scalar function) allocates nothing larger than the forward pass."""
    g = matcalc.grad(text)
    found = excess(g)
    assert not found, f"allocations larger than the forward pass: {described(found)}\n{g}"
    if hvp and not g.problem.output.shape:
        found = excess(g, second.hvp(g.problem).code)
        assert not found, f"hvp allocates more than the forward pass: {described(found)}"


# ------------------------------------------------------------ reproducers ---

def test_scaled_identity_in_a_shared_adjoint_stays_symbolic():
    # `trace(X @ S @ X.T) / 2` printed g0 = eye(N) / 2; dt0 = g0 @ X
    out = run_cli("grad", "-e", "trace(X @ S @ X.T) / 2", "-d", "X: N x D", "-d", "S: D x D")
    text = out.stdout.decode()
    assert out.returncode == 0 and "∂f/∂X = " in text
    assert "eye" not in text, text
    p = matcalc.problem("trace(X @ S @ X.T) / 2", X="N x D", S="D x D")
    assert "np.eye" not in matcalc.codegen(p)
    assert_lean(p)
    assert matcalc.check(p).ok


GAUSSIAN = "N/2*logdet(Sigma) + 1/2*trace(R @ inv(Sigma) @ R.T)"


def test_gaussian_log_likelihood_builds_no_identity():
    # compiled to np.eye(N, dtype=dtype) / 2: 8.2 s and 1.8 GB at N = 15,000
    p = matcalc.problem(GAUSSIAN, R="N x D", Sigma="D x D spd")
    source = matcalc.codegen(p)
    assert "np.eye" not in source and "np.ones" not in source
    assert str(matcalc.grad(p)["R"]) == "R @ inv(Sigma)"
    assert_lean(p, hvp=True)
    assert matcalc.check(p).ok and matcalc.check(p, seed=1).ok


def test_gaussian_at_scale_allocates_nothing_quadratic():
    import tracemalloc
    module = matcalc.compile(matcalc.problem(GAUSSIAN, R="N x D", Sigma="D x D spd"))
    rng = np.random.default_rng(0)
    R = rng.standard_normal((3000, 4))
    tracemalloc.start()
    module.value_and_grad(R=R, Sigma=np.eye(4) * 2)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * R.nbytes  # an N x N array would be 750 times R


NORMS = {
    "layer norm": ("X: N x D\ng: D\nb: D\nmu = mean(X, axis=1)\nXc = X - mu[:, None]\n"
                   "v = mean(Xc ** 2, axis=1)\nY = Xc / sqrt(v + 1e-5)[:, None] * g + b\n"
                   "f = sum(Y ** 2) / N\nwrt X, g, b\n"),
    "batch norm": ("X: N x D\ng: D\nb: D\nmu = mean(X, axis=0)\nXc = X - mu\n"
                   "v = mean(Xc ** 2, axis=0)\nY = Xc / sqrt(v + 1e-5) * g + b\n"
                   "f = sum(Y ** 2) / N\nwrt X, g, b\n"),
    "pseudo-Huber": ("X: N x D\nw: D\ny: N\nr = X @ w - y\n"
                     "f = sum(sqrt(1 + r ** 2) - 1) / N\nwrt w\n"),
    "pseudo-Huber, matrix": ("X: N x D\nW: D x K\nY: N x K\n"
                             "f = mean(sqrt(1 + (X @ W - Y) ** 2) - 1)\nwrt W\n"),
    "shared broadcast adjoint (rows)": "A: n x n\nw: n\nf = sum(sum(A @ A, axis=0) * w)\n",
    "shared broadcast adjoint (columns)": "A: n x n\nw: n\nf = sum(sum(A @ A, axis=1) * w)\n",
    "shared scaled broadcast": "A: n x n\nf = sum(mean(A @ A, axis=0) ** 2)\n",
}


@pytest.mark.parametrize("text", NORMS.values(), ids=NORMS)
def test_no_ones_array_a_person_would_not_write(text):
    # built np.ones((N, D)) (and np.ones((n, n)) * w for a shared adjoint)
    source = matcalc.codegen(text)
    assert "np.ones" not in source and "np.eye" not in source, source
    assert_lean(text, hvp=True)
    assert matcalc.check(text).ok and matcalc.check(text, seed=1).ok


# ------------------------------------------------------ the rules, checked ---

SHAPES = {"B": "K x N", "x": "N", "v": "K", "A": "N x K", "C": "N x N"}
ONES = np.ones

# (text, the same in NumPy as written, what the builders make of it)
RULES = [
    ("B @ (ones(N, K) * x[:, None])", lambda B, x, v, A, C: B @ (ONES(A.shape) * x[:, None]),
     "ones(K, K) * (B @ x)[:, None]"),
    ("(ones(N, K) * v[None, :]) @ B", lambda B, x, v, A, C: (ONES(A.shape) * v[None, :]) @ B,
     "ones(N, N) * (v @ B)[None, :]"),
    ("(ones(N, K) * v) @ B", lambda B, x, v, A, C: (ONES(A.shape) * v) @ B,
     "ones(N, N) * (v @ B)[None, :]"),
    ("(3 * ones(N, K) * v[None, :]) @ B",
     lambda B, x, v, A, C: (3 * ONES(A.shape) * v[None, :]) @ B,
     "3 * ones(N, N) * (v @ B)[None, :]"),
    ("x @ (ones(N, K) * v[None, :])", lambda B, x, v, A, C: x @ (ONES(A.shape) * v[None, :]),
     "sum(x) * v"),
    ("(ones(N, K) * x[:, None]) @ v", lambda B, x, v, A, C: (ONES(A.shape) * x[:, None]) @ v,
     "sum(v) * x"),
    ("x @ (ones(N, K) * x[:, None])", lambda B, x, v, A, C: x @ (ONES(A.shape) * x[:, None]),
     "ones(K) * (x @ x)"),
    ("(ones(N, K) * v[None, :]) @ v", lambda B, x, v, A, C: (ONES(A.shape) * v[None, :]) @ v,
     "ones(N) * (v @ v)"),
    ("C @ (ones(N, N) * x)", lambda B, x, v, A, C: C @ (ONES(C.shape) * x),
     "outer(sum(C, axis=1), x)"),
    ("sum(2 * ones(N, K), axis=1)", lambda B, x, v, A, C: np.sum(2 * ONES(A.shape), axis=1),
     "2 * K * ones(N)"),
    ("(ones(N) / N)[:, None] * A", lambda B, x, v, A, C: (ONES(len(x)) / len(x))[:, None] * A,
     "A / N"),
    ("(2 * ones(K))[None, :] * A", lambda B, x, v, A, C: (2 * ONES(len(v)))[None, :] * A,
     "2 * A"),
    ("(2 * ones(N)) / x", lambda B, x, v, A, C: (2 * ONES(len(x))) / x, "2 / x"),
    ("diag(ones(N, N)) * x", lambda B, x, v, A, C: np.diag(ONES(C.shape)) * x, "x"),
    ("A + ones(N, K) * x[:, None]", lambda B, x, v, A, C: A + ONES(A.shape) * x[:, None],
     "A + x[:, None]"),
    ("C - 2 * ones(N, N) * x", lambda B, x, v, A, C: C - 2 * ONES(C.shape) * x, "C - 2 * x"),
    ("x[:, None] * ones(N, K) + 1", lambda B, x, v, A, C: x[:, None] * ONES(A.shape) + 1,
     "ones(N, K) * (1 + x[:, None])"),
]


@pytest.mark.parametrize("text, numpy, built", RULES, ids=[r[0] for r in RULES])
def test_rule_keeps_the_value_and_the_gradient(text, numpy, built):
    p = matcalc.problem(f"sum(sin({text}))", **SHAPES)
    assert str(p.expr(text)) == built
    rng = np.random.default_rng(3)
    values = {"B": rng.normal(size=(3, 5)), "x": rng.normal(size=5), "v": rng.normal(size=3),
              "A": rng.normal(size=(5, 3)), "C": rng.normal(size=(5, 5))}
    module = matcalc.compile(p)
    value, _ = module.value_and_grad(**{n: values[n] for n in module.INPUTS})
    assert np.isclose(value, np.sum(np.sin(numpy(**values))), rtol=1e-12)
    for seed in (0, 1):
        assert matcalc.check(p, seed=seed).ok


def test_planned_sum_collects_terms_whose_scale_moved():
    # the scale of a shared adjoint moved onto two equal products: g0 + g0
    g = matcalc.grad(matcalc.problem(GAUSSIAN, R="N x D", Sigma="D x D spd"))
    gradient = dict(g.program.gradients)["R"]
    binding = next(b for b in g.program.bindings if b.name == gradient)
    assert not (isinstance(binding.expr, Apply) and binding.expr.op == "add")


# ------------------------------------------------------------- structural ---

def test_the_audit_finds_a_dense_identity():
    # the check can fail: the old program of the reproducer, bound by hand
    g = matcalc.grad(matcalc.problem("trace(X @ S @ X.T) / 2", X="N x D", S="D x D"))
    n = g.problem.dims["N"]
    eye = matcalc.ops.mul(matcalc.ir.expr.const(sympy.Rational(1, 2)), matcalc.ops.eye(n))
    old = Program(g.program.seed, g.program.bindings + (Binding("g0", eye, "backward"),),
                  g.program.value, g.program.gradients)
    bloated = type(g)(g.problem, g.exprs, g.seed, old)
    assert [str(node) for node, _ in excess(bloated)] == ["eye(N)", "eye(N) / 2"]
    assert not excess(g)


def test_the_audit_sees_broadcasts_and_skips_views():
    p = matcalc.problem("sum(x[:, None] * A.T * y[None, :])", x="N", y="D", A="D x N")
    sizes = {str(n): s for n, s in allocations([p.output])}
    assert "x[:, None] * A.T * y[None, :]" in sizes and "A.T" not in sizes


@GENERATED
@given(problems())
def test_generated_problems_allocate_no_more_than_the_forward_pass(gp):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_lean(gp.text, hvp=True)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.mc")), ids=lambda p: p.name)
def test_examples_allocate_no_more_than_the_forward_pass(path):
    assert_lean(path.read_text("utf-8"), hvp=True)


@pytest.mark.parametrize("name", list(benchmark_problems()))
def test_benchmark_problems_allocate_no_more_than_the_forward_pass(name):
    text = benchmark_problems()[name]
    assert_lean(text, hvp=True)
    for node in postorder(b.expr for b in matcalc.grad(text).program.backward()):
        assert not (isinstance(node, Apply) and node.op in ("eye", "ones")), text


# Problems where a gradient's product chain holds a product the forward pass
# forms (or does not), with what the rule must make of it.
REUSED = [
    # Σ⁻¹ Rᵀ R Σ⁻¹ = (R Σ⁻¹)ᵀ (R Σ⁻¹): the hand-written (N Σ⁻¹ − RSᵀRS)/2
    ("R: N x D\nSigma: D x D spd\nf = " + GAUSSIAN + "\n", "dSigma", "t1.T @ t1"),
    ("R: N x D\nS: D x D spd\nT = R @ inv(S)\nf = sum(T * T)\n", "dS", "T.T @ T"),
    ("R: N x D\nS: D x D\nf = trace(R @ inv(S) @ R.T)\n", "dS", "t1.T @ R"),
    ("R: N x D\nA: D x D\nf = trace(R @ A @ A.T @ R.T)\n", "dA", "R.T @ t0"),
    # the whole chain is the transpose of P = B C: a view of what the forward pass forms
    ("B: N x K\nC: K x M\nA: M x N\nP = B @ C\nf = sum(sin(P)) + trace(A @ B @ C)\n",
     "dA", "P.T"),
    # inside a chain, P = B C is larger than B and C: the low-rank factors are kept
    ("B: N x K\nC: K x M\nA: M x N\nE: M x M\nP = B @ C\n"
     "f = sum(sin(P)) + trace(A @ B @ C @ E)\n", "dA", "dt0 @ B.T"),
    # inv(A) @ C only inside a trace is never formed, so never reused
    ("A: N x N\nC: N x N\nf = trace(inv(A) @ C)\n", "dA", "t0.T @ C.T @ t0.T"),
]


@pytest.mark.parametrize("text, gradient, product", REUSED, ids=[r[2] for r in REUSED])
def test_product_chains_reuse_what_the_forward_pass_forms(text, gradient, product):
    g = matcalc.grad(text)
    binding = next(b for b in g.program.bindings if b.name == gradient)
    named = {n.name for n in postorder([binding.expr]) if isinstance(n, Var)}
    used = [str(b.expr) for b in g.program.bindings if b is binding or b.name in named]
    assert any(product in text for text in used), str(g)  # in it, or in a value it names
    assert_lean(text)
    for seed in (0, 1):
        assert matcalc.check(text, seed=seed).ok


def test_a_product_only_in_a_trace_is_not_formed():
    source = matcalc.codegen("A: N x N\nC: N x N\nf = trace(inv(A) @ C)\n")
    forward = source[source.index("def forward"):source.index("def backward")]
    code = [line for line in forward.splitlines() if not line.strip().startswith("#")]
    assert any('np.einsum("ij,ji", t0, C)' in line for line in code)
    assert not any(" @ " in line for line in code)


def test_a_computed_scalar_times_the_identity_is_absorbed_by_products():
    """A (s I) = s A for a computed scalar s (here s = tr(B A)): the backward
    pass of tr(A) tr(BA) makes no N³ product with a dense identity."""
    p = matcalc.problem("trace(A) * trace(B @ A)", A="N x N", B="N x N")
    backward = matcalc.codegen(p).split("def backward")[1].split("def value_and_grad")[0]
    assert "@" not in backward, backward
    assert matcalc.check(p, dims={"N": 4}).ok
