"""The numeric lowering (passes/lowering.py): a target's capabilities decide
how the code computes each value, and the values do not depend on them.

A NumPy target with einsum (and vdot), multi_dot, out= and boolean masks
switched off gets plain `sum(x ** 2)`, `trace(A @ B)`,
`A @ B @ C`, `a - A @ B` and step(x) as a number, and the same values."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import matcalc
from matcalc.ad import second
from matcalc.ir.expr import Apply, Var, is_op, postorder
from matcalc.passes.lowering import PLAIN, lower, lower_binding, lower_expr
from matcalc.targets import module
from matcalc.targets.numpy import CAPABILITIES, NumpyPrinter, NumpyTarget, generate, load

EXAMPLES = Path(__file__).parent.parent / "examples"


class PlainNumpy(NumpyTarget):
    """NumPy restricted to the array API's means (item assignment kept, so
    that the full Hessian can be written)."""

    capabilities = dataclasses.replace(PLAIN, item_assignment=True)


class ArrayApiLike(NumpyTarget):
    """No capability at all: not even item assignment (a full Hessian is
    stacked from columns)."""

    capabilities = PLAIN

    @staticmethod
    def eye(size: str) -> str:
        return f"np.eye({size}, dtype=dtype)"

    @staticmethod
    def stack(items: str, shape: str) -> str:
        return f"np.stack([np.broadcast_to(c, {shape}) for c in {items}], axis=-1)"


# Each problem, its sizes, and what the NumPy target's code holds for it.
PROBLEMS = [
    ("sum((exp(X) - U @ V.T) ** 2)", dict(X="m x n", U="m x k", V="n x k"),
     dict(m=5, n=4, k=3), ("np.vdot(", ", out=")),
    ("trace(inv(S) @ C) + sum(relu(S) * C) + sum(w ** 2)",
     dict(S="N x N", C="N x N", w="N"), dict(N=4),
     ("np.einsum(", "np.vdot(", "np.linalg.multi_dot(", " > 0)")),
    ("sum((relu(X @ W + b) @ V - T) ** 2)", dict(X="N x D", W="D x H", b="H", V="H x O",
                                             T="N x O"),
     dict(N=6, D=4, H=5, O=3), (" += b\n", " -= T\n", " *= (")),
]
SPECIAL = ("np.einsum(", "np.vdot(", "np.linalg.multi_dot(", ", out=", " > 0)", "np.subtract(",
           " += ", " -= ", " *= ")
IDS = ["in_place", "contractions", "updates"]


def _inputs(problem, sizes: dict, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=tuple(sizes[str(d)] for d in v.shape))
            for name, v in problem.variables.items()}


def _extras(problem):
    return [second.hessian(problem, problem.wrt[0]), second.hvp(problem)]


@pytest.mark.parametrize("text, decls, sizes, special", PROBLEMS, ids=IDS)
def test_numpy_target_uses_every_capability(text, decls, sizes, special):
    # the cases below exercise the capabilities, so their absence can fail
    code = matcalc.codegen(matcalc.problem(text, **decls))
    assert all(s in code for s in special)


@pytest.mark.parametrize("text, decls, sizes, special", PROBLEMS, ids=IDS)
def test_a_target_without_capabilities_gets_plain_code_and_the_same_values(
        text, decls, sizes, special):
    p = matcalc.problem(text, **decls)
    g = matcalc.grad(p)
    plain_source = module.generate(g, PlainNumpy(), _extras(p))
    functions = plain_source[plain_source.index("def forward("):]  # not the checks' helpers
    assert not [s for s in SPECIAL if s in functions]
    assert "np.trace(" in plain_source or "trace" not in text
    fast = load(generate(g, _extras(p)), "fast")
    plain = load(plain_source, "plain")
    values = _inputs(p, sizes)
    value, grads = fast.value_and_grad(**values)
    plain_value, plain_grads = plain.value_and_grad(**values)
    np.testing.assert_allclose(plain_value, value, rtol=1e-12)
    for w in p.wrt:
        np.testing.assert_allclose(plain_grads[w], grads[w], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(plain.hessian(**values), fast.hessian(**values),
                               rtol=1e-10, atol=1e-12)
    v = _inputs(p, sizes, seed=1)
    for w, hv in fast.hvp(v, **values).items():
        np.testing.assert_allclose(plain.hvp(v, **values)[w], hv, rtol=1e-10, atol=1e-12)


def test_plain_lowering_keeps_the_textbook_program():
    g = matcalc.grad(matcalc.problem(PROBLEMS[1][0], **PROBLEMS[1][1]))
    assert lower(g.program, PLAIN).bindings == g.program.bindings
    kinds = {n.op for b in lower(g.program, CAPABILITIES).bindings
             for n in postorder([b.expr]) if isinstance(n, Apply)}
    assert {"einsum", "multi_dot", "mask"} <= kinds


@pytest.mark.parametrize("text, decls", [
    ("sum(exp(X @ w))", dict(X="N x D", w="D")),
    ("sum(exp(X @ W))", dict(X="N x D", W="D x K")),
])
def test_a_full_hessian_without_item_assignment_is_stacked(text, decls):
    """Without item assignment the full Hessian is the stack of its
    columns H e_k, equal to the one filled entry by entry."""
    p = matcalc.problem(text, **decls)
    g = matcalc.grad(p)
    source = module.generate(g, ArrayApiLike(), [second.hessian(p)])
    assert "index] = " not in source and "np.stack(" in source
    values = _inputs(p, dict(N=5, D=3, K=2))
    stacked, filled = (m.hessian(**values) for m in (
        load(source, "stacked"), load(generate(g, [second.hessian(p)]), "filled")))
    stacked, filled = _blocks(stacked), _blocks(filled)
    assert set(stacked) == set(filled)
    for key, h in filled.items():
        assert stacked[key].shape == h.shape
        np.testing.assert_allclose(stacked[key], h, rtol=1e-12, atol=1e-12)


def _blocks(hessian) -> dict:
    """A Hessian by one variable, or its blocks {x: {y: H}}, by (x, y)."""
    if not isinstance(hessian, dict):
        return {"": hessian}
    return {(x, y): h for x, row in hessian.items() for y, h in row.items()}


def _value(expr, values: dict):
    names = {n.name for n in postorder([expr]) if isinstance(n, Var)}
    printer = NumpyPrinter({name: f"_v[{name!r}]" for name in names})
    return eval(printer.doprint(expr), {"np": np, "_v": values})


@pytest.mark.parametrize("text, kind", [
    ("sum(x ** 2)", "einsum"), ("sum(square(X))", "einsum"),
    ("trace(X @ Y)", "einsum"), ("trace(X @ Y.T)", "einsum"),
    ("sum(X @ Y @ X)", "multi_dot"), ("sum(X @ Y @ x)", "multi_dot"),
    ("sum(X * step(Y))", "mask"), ("sum(-x * step(x) * step(X @ x))", "mask"),
])
def test_each_lowering_fires_and_keeps_the_value(text, kind):
    p = matcalc.problem(text, X="N x N", Y="N x N", x="N")
    expr = p.output.args[0] if isinstance(p.output, Apply) and p.output.op == "name" \
        else p.output
    lowered = lower_expr(expr, CAPABILITIES)
    assert kind in {n.op for n in postorder([lowered]) if isinstance(n, Apply)}
    assert lower_expr(expr, PLAIN) is expr
    values = _inputs(p, {"N": 5}, seed=2)
    np.testing.assert_allclose(_value(lowered, values), _value(expr, values), rtol=1e-12)


# An einsum's lowered forms: (text, what the NumPy target computes it as).
CONTRACTIONS = [
    ('einsum("btd,dk->btk", X3, W)', "tensordot"),               # X @ W: one gemm
    ('einsum("btd,dk->kbt", X3, W)', "tensordot"),               # its result permuted
    ('einsum("btd,btk->dk", X3, Y3)', "tensordot"),              # two indices summed
    ('einsum("bthd,bshd->bhts", Q4, K4)', "permute"),            # both operands permuted
    ('einsum("bhst,bhsd->bthd", P4, V4)', "matrix_transpose"),   # swapaxes(P) @ V, permuted
    ('einsum("bhts,bhsd->bthd", P4, V4)', "matmul"),             # transpose(P @ V, ...)
    ('einsum("btd,dk,bk->bt", X3, W, Y)', "ordered_contract"),   # the fallback: an order
    ('einsum("btd,btd->b", X3, Z3)', "ordered_contract"),        # no product of stacks
]
SHAPES = dict(X3="B x T x D", Y3="B x T x K", Z3="B x T x D", W="D x K", Y="B x K",
              Q4="B x T x H x D", K4="B x T x H x D", P4="B x H x T x T", V4="B x H x T x D")


def _contraction(text: str):
    """The `contract` node of `text` and random values of its operands."""
    p = matcalc.problem(text, **{n: s for n, s in SHAPES.items() if n in text})
    node = p.output.args[0] if p.output.op == "name" else p.output
    assert node.op == "contract" and all(isinstance(a, Var) for a in node.args)
    return node, _inputs(p, {"B": 2, "T": 3, "D": 4, "K": 5, "H": 6}, seed=3)


@pytest.mark.parametrize("text, kind", CONTRACTIONS)
def test_each_einsum_lowering_fires_and_equals_the_einsum(text, kind):
    node, values = _contraction(text)
    lowered = lower_expr(node, CAPABILITIES)
    assert lowered.op != "contract" and kind in {
        n.op for n in postorder([lowered]) if isinstance(n, Apply)}
    assert lowered.shape == node.shape
    assert lower_expr(node, PLAIN) is node
    einsum = np.einsum(node.param("spec"), *(values[a.name] for a in node.args))
    np.testing.assert_allclose(_value(lowered, values), einsum, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("flag, text, kinds", [
    ("tensordot", CONTRACTIONS[0][0], {"tensordot"}),
    ("batched_matmul", CONTRACTIONS[3][0], {"matmul", "permute", "matrix_transpose"}),
    ("contraction_order", CONTRACTIONS[6][0], {"ordered_contract"})])
def test_each_einsum_lowering_is_gated_by_its_capability(flag, text, kinds):
    node, _ = _contraction(text)
    assert kinds & {n.op for n in postorder([lower_expr(node, CAPABILITIES)])
                    if isinstance(n, Apply)}
    without = lower_expr(node, dataclasses.replace(CAPABILITIES, **{flag: False}))
    assert not kinds & {n.op for n in postorder([without]) if isinstance(n, Apply)}


def test_an_einsum_the_printers_write_as_matmul_is_not_lowered():
    node, _ = _contraction('einsum("bhtd,bhsd->bhts", Q4, K4)')  # Q4 @ swapaxes(K4, -1, -2)
    assert lower_expr(node, CAPABILITIES) is node


def _broadcasts():
    """ones(N, D) ⊙ w[:, None], 2 ones(N, D), where(X > w[:, None], 1, 0) and
    where(X > w[:, None], 0, 3)."""
    from matcalc.ir.expr import const, var
    from matcalc.ops import col, compare, mul, ones, where
    n, d = (matcalc.problem("sum(X)", X="N x D").variables["X"].shape)
    x, w = var("X", (n, d)), var("w", (n,))
    return (mul(ones((n, d)), col(w)), mul(const(2), ones((n, d))),
            where(compare(x, col(w), ">"), ones((n, d)), const(0)),
            where(compare(x, col(w), ">"), const(0), mul(const(3), ones((n, d)))))


@pytest.mark.parametrize("k, fresh, kind, flag", [
    (0, False, "broadcast", "broadcasts"), (0, True, "broadcast_copy", "broadcasts"),
    (1, False, "full", "broadcasts"), (2, False, "indicator", "casts"),
    (3, False, "logical_not", "casts")])
def test_broadcasts_and_masks_are_lowered_without_ones(k, fresh, kind, flag):
    expr = _broadcasts()[k]
    lowered = lower_expr(expr, CAPABILITIES, fresh)
    ops = {n.op for n in postorder([lowered]) if isinstance(n, Apply)}
    assert kind in ops and "ones" not in ops and lowered.shape == expr.shape
    without = lower_expr(expr, dataclasses.replace(CAPABILITIES, **{flag: False}), fresh)
    assert kind not in {n.op for n in postorder([without]) if isinstance(n, Apply)}
    rng = np.random.default_rng(0)
    values = {"X": rng.standard_normal((4, 3)), "w": rng.standard_normal(4), "N": 4, "D": 3}
    scope = {"np": np, "_v": values, "dtype": np.dtype(np.float64)}
    names = {"X": "_v['X']", "w": "_v['w']", "N": "4", "D": "3"}
    got, want = (eval(NumpyPrinter(names).doprint(e), scope) for e in (lowered, without))
    assert np.asarray(got).dtype == np.float64
    np.testing.assert_array_equal(got, want)
    if fresh:
        assert got.flags.writeable


# A new product's value combined elementwise: (text, shapes, lowered to an update)
UPDATES = [
    ("X @ W + b", dict(X="N x D", W="D x H", b="H"), True),
    ("X @ W - Y - b", dict(X="N x D", W="D x H", Y="N x H", b="H"), True),
    ("(X @ W) * step(Y)", dict(X="N x D", W="D x H", Y="N x H"), True),
    ("X @ w + y", dict(X="N x D", w="D", y="N"), True),
    ("x @ W + Y", dict(x="D", W="D x H", Y="N x H"), False),        # the product broadcasts
    ("2 * (X @ W) * Y", dict(X="N x D", W="D x H", Y="N x H"), False),  # a scale: on the product
    ("x @ y + 1", dict(x="D", y="D"), False),                        # a scalar
    ("E[k] @ W + b", dict(E="V x D", k="N int", W="D x H", b="H"), True),  # k: an index
]


@pytest.mark.parametrize("text, decls, fires", UPDATES)
def test_a_new_product_is_updated_in_place_where_that_is_safe(text, decls, fires):
    """t = A @ B, then t += c, t -= d, t *= m: only where the product is of
    the value's shape, not scaled, not a scalar; the value is the
    expression's either way."""
    p = matcalc.problem(f"sum(sin({text}))", **decls)
    expr = next(n for n in postorder([p.output])
                if is_op(n, "add", "mul") and any(is_op(a, "matmul") for a in n.args))
    lowered = lower_binding(expr, CAPABILITIES)
    assert is_op(lowered, "update") == fires
    assert lower_binding(expr, dataclasses.replace(CAPABILITIES, updates=False)).op != "update"
    rng = np.random.default_rng(4)
    sizes = {"N": 4, "D": 3, "H": 5, "V": 6}
    values = {n: rng.integers(0, 6, sizes["N"]) if v.domain == "int" else
              rng.normal(size=tuple(sizes[str(d)] for d in v.shape))
              for n, v in p.variables.items()}
    names = {n.name for n in postorder([expr]) if isinstance(n, Var)}
    lines = NumpyTarget.assignment("t", lowered, NumpyPrinter({n: f"_v[{n!r}]" for n in names}))
    assert len(lines) > 1 if fires else len(lines) == 1
    run = {"np": np, "_v": values}
    exec("\n".join(lines), run)  # the statements themselves: t = A @ B, t += c, ...
    np.testing.assert_allclose(run["t"], _value(expr, values), rtol=1e-12)


def test_mixed_floating_inputs_take_the_widest_type_and_update_in_place():
    """float32 X and W beside a float64 b: every input is made float64
    first, so X @ W, updated in place by b, has the type and value of
    X @ W + b (a float32 product would keep b's sum in float32)."""
    m = matcalc.compile("X: N x D\nW: D x H\nb: H\nZ = X @ W + b\nf = sum(tanh(Z))\n")
    assert "    Z = X @ W\n    Z += b\n" in m.source
    rng = np.random.default_rng(5)
    X, W, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 5)), rng.normal(size=5)
    X, W = X.astype(np.float32), W.astype(np.float32)
    want, want_grads = m.value_and_grad(X=X.astype(np.float64), W=W.astype(np.float64), b=b)
    got, grads = m.value_and_grad(X=X, W=W, b=b)
    assert type(got) is np.float64 and {g.dtype for g in grads.values()} == {np.dtype("f8")}
    assert got == want
    for name, g in grads.items():
        np.testing.assert_array_equal(g, want_grads[name])


def test_an_hvp_direction_takes_the_inputs_type():
    """float32 inputs, a float64 entry of v: v is made float32, so no term
    of the HVP is wider than the product it is added into."""
    m = matcalc.compile((EXAMPLES / "mlp.mc").read_text("utf-8"), hvp=True)
    rng = np.random.default_rng(6)
    sizes = {"N": 5, "D": 4, "H": 3, "O": 2}
    inputs = {n: rng.normal(size=tuple(sizes[str(d)] for d in s)).astype(np.float32)
              for n, s in zip(m.INPUTS, m.SHAPES)}
    v = {n: rng.normal(size=inputs[n].shape) for n in m.WRT}  # float64
    got = m.hvp(v, **inputs)
    want = m.hvp({n: x.astype(np.float32) for n, x in v.items()}, **inputs)
    for name in m.WRT:
        assert got[name].dtype == np.float32
        np.testing.assert_array_equal(got[name], want[name])


def test_a_vector_product_is_matmul():
    """`X @ w`, never `X.dot(w)` (0.2-0.4 µs faster a call): NumPy checks the
    floating-point flags a BLAS call leaves after `dot`, not after matmul,
    and a float32 gemv once raised a spurious 'invalid value encountered in
    dot' here (tests/test_input_checks.py, cross attention, in CI)."""
    source = matcalc.codegen("X: N x D\ny: N\nw: D\nf = sum(log(1 + exp(-y * (X @ w))))\nwrt w\n",
                             hvp=True, hessian=True)
    assert ".dot(" not in source and "np.dot(" not in source
    assert "X @ w" in source
