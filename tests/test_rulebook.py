"""The builders' identities, each tested alone: it fires on its case, and the
node it makes equals, on random inputs in the domain, the node built with it
turned off. Every registered rule must have a case here."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import matcalc
from matcalc.checks.inputs import sample
from matcalc.ir.expr import Var, apply, const, postorder, var
from matcalc.ops import (OPS, add, col, diag, div, eye, exp, func, kron, log, logsumexp, matmul,
                         mul, neg, ones, outer, reduce_sum, row, rulebook, softmax, solve, sub,
                         transpose, unindex, unkron_left, unkron_right)
from matcalc.ops.axes import expand_dims
from matcalc.ops.builders import _built, inv, power, trace
from matcalc.ops.functions import compare, where
from matcalc.targets.evaluation import evaluate

N, M = sympy.symbols("N M")
SIZES = {"N": 3, "M": 4}
x, y, z = (var(n, (N,)) for n in "xyz")
w = var("w", (M,))
p = var("p", (N,), domain="positive")
q = var("q", (M,), domain="positive")
s = var("s", ())
A, B, C, D = (var(n, (N, N)) for n in "ABCD")
S = var("S", (N, N), structure="symmetric")
P = var("P", (N, N), structure="spd")
X = var("X", (N, M))
Xp = var("Xp", (N, M), domain="positive")
Z = var("Z", (N, M, 2))
K = var("K", (N, M, 1), domain="positive")       # a kept divisor (keepdims)
U = var("U", (N, 1, M))
Kc = var("Kc", (N, 1), domain="positive")         # a kept divisor of a matrix
Y = var("Y", (M, N))
Yh = var("Yh", (N, M), domain="onehot")


def _centred(m, axis=1):
    """m − mean(m, axis) broadcast back."""
    spread = col if axis == 1 else row
    return sub(m, div(spread(reduce_sum(m, axis)), const(m.shape[axis])))


def _two(e):
    return mul(const(2), e)


CASES = {
    "add_expm1": lambda: add(const(1), func("expm1", x)),
    "add_exp_minus_one": lambda: sub(exp(x), const(1)),
    "add_sigmoid_complement": lambda: add(mul(y, func("sigmoid", x)),
                                          mul(z, func("sigmoid", neg(x))), p),
    "mul_eye_diag": lambda: mul(x, eye(N)),
    "add_outers_sharing_a_vector": lambda: add(outer(x, y), mul(const(-2), outer(z, y)),
                                               outer(y, exp(x)), outer(y, z), A),
    "matmul_dot_with_a_factor": lambda: matmul(mul(var("ys", (N,), domain="sign"), exp(x)),
                                              var("ys", (N,), domain="sign")),
    "matmul_scaled_vector": lambda: add(matmul(mul(col(exp(x)), A, y), z),
                                        matmul(z, mul(const(2), s, col(y), A, exp(x)))),
    "pow_quotient_by_root": lambda: power(div(x, func("sqrt", const(2))), const(2)),
    "mul_vector_diag": lambda: mul(col(exp(x)), diag(y)),
    "add_diagonals": lambda: add(diag(x), mul(const(-3), diag(exp(y))), A),
    "mul_column_outer": lambda: mul(col(x), outer(y, w)),
    "mul_reciprocal": lambda: mul(x, div(const(3), p)),
    "mul_into_where": lambda: add(mul(const(0.1), where(compare(x, y, ">"), const(0), z)),
                                  mul(where(compare(x, y, ">"), ones((N,)), const(0)), exp(y))),
    "div_into_where": lambda: div(where(compare(x, y, ">"), mul(const(3), ones((N,))), const(0)),
                                  p),
    "div_broadcast_ones": lambda: div(_two(ones((N, M))), col(p)),
    "add_complementary_wheres": lambda: add(where(compare(x, y, ">"), z, const(0)),
                                            where(compare(x, y, ">"), const(0), mul(y, z)), p),
    "add_scaled_sum": lambda: add(div(x, const(2)), neg(add(y, div(x, const(-2))))),
    "where_settled": lambda: where(compare(x, y, ">"),
                                   add(mul(where(compare(x, y, ">"), z, exp(x)), p), y),
                                   mul(where(compare(x, y, ">"), z, exp(x)), p)),
    "mul_relu_step": lambda: mul(y, func("relu", x), func("step", x)),
    "mul_cancel_quotients": lambda: mul(div(x, mul(s, func("exp", s))), func("exp", s),
                                        div(y, func("abs", s))),
    "div_coefficient": lambda: div(x, _two(p)),
    "div_cancel": lambda: div(mul(x, p), p),
    "div_of_quotient": lambda: div(p, div(p, exp(x))),
    "sign_coefficient": lambda: _built("sign", mul(const(-0.5), x)),
    "div_softmax": lambda: div(exp(X), col(reduce_sum(exp(X), 1))),
    "sum_inserted_axes": lambda: reduce_sum(mul(const(3), expand_dims(X, (1,))), (1, 2)),
    "expand_dims_coefficient": lambda: add(expand_dims(_two(X), (2,)),
                                           expand_dims(div(const(3), Xp), (2,))),
    "expand_dims_unit_sum": lambda: expand_dims(reduce_sum(mul(U, U), (1,)), (1,)),
    "col_unit_sum": lambda: col(reduce_sum(mul(const(3), Kc, exp(Kc)), 1)),
    "row_unit_sum": lambda: row(reduce_sum(exp(var("Xr", (1, M))), 0)),
    "div_sigmoid": lambda: div(const(1), add(const(1), exp(neg(x)))),
    "matmul_symmetric_first": lambda: matmul(x, S),
    "matmul_diag_left": lambda: matmul(diag(x), X),
    "matmul_diag_right": lambda: matmul(A, diag(x)),
    "matmul_broadcast": lambda: matmul(A, mul(ones((N, N)), x)),
    "matmul_ones_left": lambda: matmul(ones((N,)), X),
    "matmul_ones_right": lambda: matmul(X, ones((M,))),
    "matmul_kron": lambda: matmul(kron(A, B), kron(C, D)),
    "matmul_coefficient": lambda: matmul(_two(A), X),
    "matmul_scaled_identity": lambda: matmul(A, mul(s, eye(N))),
    "matmul_scalar": lambda: matmul(mul(s, A), mul(func("exp", s), x)),
    "transpose_symmetric": lambda: transpose(S),
    "transpose_transpose": lambda: transpose(transpose(X)),
    "transpose_coefficient": lambda: add(transpose(mul(const(-3), X)), transpose(div(exp(X), s))),
    "transpose_outer": lambda: transpose(outer(x, w)),
    "matmul_outer": lambda: add(matmul(X, outer(w, y)), matmul(outer(x, y), A),
                                outer(matmul(z, outer(x, y)), matmul(outer(y, x), p))),
    "matmul_sum_of_outers": lambda: add(matmul(add(outer(x, y), mul(const(-2), outer(z, p))), A),
                                        matmul(B, sub(outer(y, x), outer(p, z)))),
    "matmul_vector_transposed": lambda: matmul(w, transpose(X)),
    "sum_of_product": lambda: add(reduce_sum(matmul(X, transpose(X))), reduce_sum(outer(x, w)),
                                  *(reduce_sum(exp(reduce_sum(m, axis))) for axis in (0, 1)
                                    for m in (matmul(A, X), outer(x, w))),
                                  reduce_sum(matmul(A, x))),
    "sum_of_vector_product": lambda: add(reduce_sum(mul(x, exp(y))), s),
    "mul_column_row": lambda: add(mul(col(x), row(w)), mul(row(w), col(exp(y)))),
    "sum_broadcast_vector": lambda: reduce_sum(_two(col(x)), 1),
    "sum_of_broadcast": lambda: add(reduce_sum(mul(ones((M, N)), x, y), 0),
                                    reduce_sum(mul(ones((N, M)), col(x), s), 1)),
    "sum_weighted_rows": lambda: add(reduce_sum(mul(const(3), col(x), B), 0),
                                     reduce_sum(mul(A, row(y)), 1),
                                     reduce_sum(mul(A, y), 1)),  # a bare vector: a row
    "sum_centred": lambda: reduce_sum(add(exp(X), div(mul(col(x), _centred(X)), col(p))), 1),
    "sum_diagm": lambda: reduce_sum(diag(x), 0),
    "sum_diag_trace": lambda: reduce_sum(diag(A)),
    "sum_coefficient": lambda: reduce_sum(_two(X)),
    "sum_transpose": lambda: reduce_sum(transpose(X), 0),
    "sum_of_sum": lambda: add(reduce_sum(reduce_sum(X, 1)),
                              reduce_sum(reduce_sum(var("Z", (N, M, 2)), (0, 2)))),
    "diagm_ones": lambda: diag(_two(ones((N,)))),
    "diag_diagm": lambda: diag(diag(x)),
    "diag_outer": lambda: diag(outer(x, y)),
    "diag_eye_ones": lambda: diag(eye(N)),
    "log_exp": lambda: log(exp(X)),
    "log_sigmoid": lambda: log(func("sigmoid", x)),
    "log_abs_det": lambda: log(func("abs", func("det", A))),
    "log_softmax": lambda: log(softmax(X, 1)),
    "log_sum_exp": lambda: log(reduce_sum(exp(X), 0)),
    "log_one_minus_sigmoid": lambda: log(sub(const(1), func("sigmoid", x))),
    "log_softplus": lambda: log(add(const(1), exp(x))),
    "log_log1p": lambda: log(add(const(1), p)),
    "exp_log": lambda: exp(log(p)),
    "exp_softmax": lambda: exp(sub(x, logsumexp(x))),
    "kron_eye": lambda: kron(eye(2), eye(3)),      # (sizes: evaluate reads no N M)
    "trace_kron": lambda: trace(kron(A, mul(s, B))),
    "trace_of_sum": lambda: add(trace(add(A, matmul(B, C))), trace(mul(const(3), A)),
                                trace(mul(exp(s), outer(x, y)))),
    "trace_outer": lambda: trace(outer(x, y)),
    "sum_eye_product": lambda: add(reduce_sum(mul(eye(N), A, B)), reduce_sum(mul(eye(N), A), 1),
                                   reduce_sum(mul(eye(N), exp(A)), 0)),
    "pow_eye": lambda: mul(power(eye(N), const(3)), A),
    "kron_coefficient": lambda: kron(_two(A), X),
    "unkron_left_eye": lambda: unkron_left(eye(6), var("Q", (3, 3))),
    "unkron_right_eye": lambda: unkron_right(eye(6), var("R", (2, 2))),
    "solve_scaled_identity": lambda: solve(P, mul(s, eye(N))),
    "solve_coefficient": lambda: solve(P, _two(X)),
    "solve_scalar": lambda: add(solve(P, div(X, exp(s))), solve(P, mul(s, X))),
    "col_ones": lambda: col(_two(ones((N,)))),
    "row_ones": lambda: row(_two(ones((N,)))),
    "col_coefficient": lambda: add(col(_two(x)), col(div(const(3), p))),
    "row_coefficient": lambda: row(neg(x)),
    "outer_coefficient": lambda: add(outer(x, _two(w)), outer(mul(s, x), w)),
    "inv_inv": lambda: inv(inv(P)),
    "add_sliced_blocks": lambda: add(  # columns 0 and 2:4 of a 3 x 4 array, column 1 a gap
        unindex(var("G1", (3, 1)), (3, 4), ((None, None, None), (0, 1, None))),
        var("Q", (3, 4)), unindex(var("G2", (3, 2)), (3, 4), ((None, None, None), (2, None, None)))),
    "div_tangent": lambda: add(div(func("sinh", x), func("cosh", x)),
                               div(func("sin", y), func("cos", y))),
    "div_cancel_power": lambda: add(div(mul(s, A), mul(const(3), power(s, const(2)))),
                                    div(mul(p, x, y), power(p, const(3)))),
    "div_repeated_divisor": lambda: add(div(div(const(1), func("sqrt", p)), mul(const(4), power(
        func("sqrt", p), const(2)))), div(div(const(-2), s), s)),
    "inv_transpose": lambda: add(inv(transpose(P)), matmul(inv(transpose(A)), A)),
    "transpose_broadcast": lambda: add(transpose(mul(const(-2), ones((N, M)), w)),
                                       transpose(mul(ones((N, M)), col(x), s))),
    "outer_ones": lambda: add(outer(ones((N,)), w), outer(x, ones((M,)))),
    "solve_broadcast": lambda: add(solve(P, mul(ones((N, M)), w)), solve(P, ones((N, M))),
                                   solve(P, mul(s, ones((N, M)), col(x), w))),
    "unkron_left_ones": lambda: unkron_left(_two(ones((6, 6))), var("Q", (3, 2))),
    "unkron_right_ones": lambda: unkron_right(ones((6, 4)), var("R", (2, 2))),
    "sum_eye": lambda: add(reduce_sum(eye(N), 0), mul(reduce_sum(eye(N)), x)),
    "sum_unindex": lambda: add(reduce_sum(unindex(var("G", (2, M)), (N, M), ((1, 3, None),)), 0),
                               reduce_sum(unindex(var("V", (2,)), (N,), ((0, 2, None),)))),
    "matmul_inverse": lambda: add(matmul(transpose(inv(P)), transpose(P)), A),
}


def _inputs(*exprs, seed: int) -> dict:
    """Random values of every variable of `exprs`, in its declared domain."""
    rng = np.random.default_rng(seed)
    values: dict = dict(SIZES)
    for v in postorder(exprs):
        if isinstance(v, Var):
            shape = tuple(int(d.subs(SIZES)) for d in v.shape)
            values[v.name] = sample(v, shape, None, rng)
    return values


def test_every_rule_has_a_case():
    assert set(CASES) == set(rulebook.RULES)


@pytest.mark.parametrize("name", sorted(rulebook.RULES))
def test_rule_fires_and_keeps_the_value(name):
    with rulebook.disabled(name):
        plain = CASES[name]()
    with rulebook.recording() as fired:
        rewritten = CASES[name]()
    assert rulebook.RULES[name] in fired
    assert rewritten is not plain
    assert rewritten.shape == plain.shape
    for seed in range(3):
        values = _inputs(plain, rewritten, seed=seed)
        expected = np.asarray(evaluate(plain, values), dtype=float)
        got = np.asarray(evaluate(rewritten, values), dtype=float)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_rules_are_listed_by_operator_in_order():
    rules = rulebook.listing("log")
    assert [r.name for r in rules][:2] == ["log_exp", "log_sigmoid"]
    assert all(r.op == "log" and r.identity for r in rules)
    assert len(rulebook.listing()) == len(rulebook.RULES)
    assert rulebook.RULES["log_softplus"].identity == "log(1 + exp(z)) = softplus(z)"


def test_a_disabled_rule_is_back_after_the_block():
    with rulebook.disabled("log_softplus"):
        assert log(add(const(1), exp(x))).op == "log1p"       # the next rule applies
        with rulebook.disabled("log_log1p"):
            assert log(add(const(1), exp(x))).op == "log"
        assert log(add(const(1), exp(x))).op == "log1p"
    assert log(add(const(1), exp(x))).op == "softplus"


def test_disabling_an_unknown_rule_is_an_error():
    with pytest.raises(KeyError, match="no_such_rule"):
        with rulebook.disabled("no_such_rule"):
            pass


def test_a_disabled_rule_changes_what_the_language_builds():
    text = "x: N\nf = sum(log(1 + exp(x)))"
    assert "softplus" in repr(matcalc.parse(text).output)
    with rulebook.disabled("log_softplus"):
        assert "softplus" not in repr(matcalc.parse(text).output)


def _step_rules(text: str) -> list[tuple[str, ...]]:
    derivation = matcalc.grad(matcalc.parse(text), steps=True).steps
    return [step.rules for step in derivation.steps]


def test_steps_name_the_identity_a_line_uses():
    """d logsumexp builds exp(x − logsumexp(x)), which the builders make softmax."""
    identity = rulebook.RULES["exp_softmax"].identity
    rules = _step_rules("x: N\nf = logsumexp(x)")
    assert identity in rules[0]
    text = str(matcalc.grad(matcalc.parse("x: N\nf = logsumexp(x)"), steps=True).steps)
    dot = rulebook.RULES["sum_of_vector_product"].identity
    assert f"df = softmax(x) @ dx    [d logsumexp(x) = sum(softmax(x) ⊙ dx); {identity}; {dot}]" \
        in text
    with rulebook.disabled("exp_softmax"):
        assert all(identity not in r for r in _step_rules("x: N\nf = logsumexp(x)"))


def test_steps_name_no_identity_where_none_is_used():
    identities = {r.identity for r in rulebook.listing()}
    for rules in _step_rules("x: N\ny: N\nf = sum(x * y)"):
        assert not identities & set(rules)


def test_an_identity_keeps_the_shape_a_dropped_term_broadcast():
    """1 ⊙ 1ᵀ + expm1(x) is exp(x) broadcast to N x N, not the vector exp(x)."""
    total = add(ones((N, N)), func("expm1", x))
    assert total.shape == (N, N)
    values = _inputs(x, seed=0)
    np.testing.assert_allclose(evaluate(total, values),
                               np.broadcast_to(np.exp(values["x"]), (3, 3)), rtol=1e-12)


# Rules of `passes.simplify.RULES` (applied to derivatives) added with the
# textbook table, each tested alone: it rewrites its case, and the rewrite
# has the case's value on random inputs. A case is a node, or (the node, the
# nodes the forward pass computes).
def _marked(g):
    """g behind an adjoint mark, as the reverse pass names it."""
    return apply(OPS["adjoint"], (g,))


DERIVATIVE_CASES = {
    "marked_like_terms": lambda: apply(OPS["add"], (
        mul(const(sympy.Rational(1, 2)), matmul(A, x)),
        matmul(A, apply(OPS["adjoint"], (mul(const(sympy.Rational(1, 2)), x),))), y)),
    "common_elementwise_factor": lambda: apply(OPS["add"], (mul(x, y, z), mul(const(3), y, p, x),
                                                            mul(s, z))),
    "common_factor": lambda: apply(OPS["add"], (neg(matmul(A, matmul(B, C))),
                                                mul(const(-2), matmul(matmul(A, D), C)), x)),
    "sum_of_sums": lambda: apply(OPS["add"], (reduce_sum(A, 0), reduce_sum(mul(s, B), 0),
                                              reduce_sum(C, 1))),
    "common_divisor": lambda: apply(OPS["add"], (
        apply(OPS["adjoint"], (div(A, col(p)),)), mul(const(-2), col(div(y, p)), B),
        div(C, row(p)))),
    "sum_of_quotient": lambda: reduce_sum(mul(const(-3), div(mul(X, X), row(q))), 0),
    "computed_quotient": lambda: (mul(const(3), col(div(x, p)), X), {div(X, col(p))}),
    "computed_product": lambda: (  # P⁻¹ (Yᵀ (Y / 2)) P⁻¹ = (Y P⁻¹)ᵀ (Y P⁻¹) / 2, through marks
        apply(OPS["matmul"], (apply(OPS["matmul"], (inv(P), _marked(matmul(
            transpose(Y), _marked(mul(const(sympy.Rational(1, 2)), Y)))))), inv(P))),
        {matmul(Y, inv(P))}),
    "distributed_over_computed": lambda: (  # A (s x + 2 A x) = s A x + 2 A A x, both computed
        apply(OPS["matmul"], (A, apply(OPS["add"], (mul(s, x), mul(const(2), matmul(A, x)))))),
        {matmul(A, x), matmul(A, matmul(A, x))}),
    "computed_symmetric_product": lambda: (
        apply(OPS["matmul"], (inv(P), apply(OPS["transpose"], (solve(P, S),)))), {solve(P, S)}),
}


@pytest.mark.parametrize("name", sorted(DERIVATIVE_CASES))
def test_derivative_rule_rewrites_and_keeps_the_value(name):
    from matcalc.passes import simplify
    rule = getattr(simplify, name)
    assert rule in simplify.RULES
    case = DERIVATIVE_CASES[name]()
    case, computed = case if isinstance(case, tuple) else (case, set())
    rewritten = rule(case, computed)
    assert rewritten is not None and rewritten is not case
    assert rule(case, computed | {case}) is None        # a computed node is kept
    for seed in range(3):
        values = _inputs(case, rewritten, seed=seed)
        np.testing.assert_allclose(np.asarray(evaluate(rewritten, values), dtype=float),
                                   np.asarray(evaluate(case, values), dtype=float),
                                   rtol=1e-10, atol=1e-12)


def test_known_sum_rewrites_and_keeps_the_value():
    """sum(0.9 Y + 0.1 / M + 3 softmax(X), axis=1) = 4 for one-hot Y, even
    where the forward pass computes it (a number is no dearer than a name)."""
    from matcalc.passes.simplify import RULES, known_sum
    assert known_sum in RULES
    case = reduce_sum(apply(OPS["add"], (mul(const(sympy.Rational(9, 10)), Yh),
                                         const(sympy.Rational(1, 10) / M),
                                         mul(const(3), func("softmax", X, axis=1)))), 1)
    assert known_sum(case, {case}) is mul(const(4), ones((N,)))
    for seed in range(3):
        values = _inputs(case, seed=seed)
        np.testing.assert_allclose(evaluate(case, values), 4.0, rtol=1e-12)
    assert known_sum(reduce_sum(mul(const(3), func("softmax", X, axis=1)), 0), set()) is None
    assert known_sum(reduce_sum(Yh), set()) is const(N)


def _divisor_rule(name):
    from matcalc.passes import divisors
    return getattr(divisors, name)


@pytest.mark.parametrize("name, make", [
    ("common_divisor", lambda: (apply(OPS["add"], (div(X, row(q)), mul(s, div(X, row(q)), X),
                                                  X)), set())),
    ("common_divisor", lambda: (apply(OPS["add"], (div(x, s), mul(const(3), div(y, s)))), set())),
    ("common_divisor", lambda: (apply(OPS["add"], (div(X, row(q)), div(func("exp", w), q))),
                                set())),
    ("sum_of_quotient", lambda: (reduce_sum(div(mul(X, X), col(p)), 1), set())),
    ("sum_of_quotient", lambda: (reduce_sum(mul(X, div(X, func("exp", s)))), set())),
    ("computed_quotient", lambda: (mul(row(div(w, q)), X), {div(X, row(q))})),
    ("computed_quotient", lambda: (mul(div(w, q), X), {div(X, q)})),
    ("computed_quotient", lambda: (mul(div(func("exp", s), s), X), {div(X, s)})),
    ("common_divisor", lambda: (apply(OPS["add"], (div(Z, K), mul(const(-3), div(exp(Z), K)),
                                                  Z)), set())),
    ("sum_of_quotient", lambda: (expand_dims(reduce_sum(div(mul(Z, Z), K), (2,)), (2,)), set())),
    ("sum_of_quotient", lambda: (expand_dims(reduce_sum(mul(Z, div(exp(Z), K)), (2,)), (2,)),
                                 set())),
    ("computed_quotient", lambda: (mul(div(expand_dims(reduce_sum(Z, (2,)), (2,)), K), Z, s),
                                   {div(Z, K)})),
    ("sum_of_quotient", lambda: (col(reduce_sum(div(X, Kc), 1)), set())),
    ("common_divisor", lambda: (apply(OPS["add"], (div(X, Kc), div(exp(X), Kc))), set())),
])
def test_divisor_rules_take_any_broadcast_divisor(name, make):
    """Rows (a vector in a matrix is one), scalars and kept divisors (an
    array of length 1 along the summed axes, as keepdims makes) as well as
    columns, along either axis; the value is kept."""
    node, computed = make()
    out = _divisor_rule(name)(node, computed)
    assert out is not None and out is not node
    for seed in range(2):
        values = _inputs(node, out, seed=seed)
        np.testing.assert_allclose(np.asarray(evaluate(out, values), dtype=float),
                                   np.asarray(evaluate(node, values), dtype=float), rtol=1e-10)


@pytest.mark.parametrize("name, make", [
    ("common_divisor", lambda: (apply(OPS["add"], (div(A, col(p)), div(B, row(p)))), set())),
    ("common_divisor", lambda: (apply(OPS["add"], (div(A, col(p)), div(B, col(p)))),
                                {div(A, col(p))})),
    ("common_divisor", lambda: (apply(OPS["add"], (div(A, col(p)), col(div(func("exp", s), p)))),
                                set())),
    ("sum_of_quotient", lambda: (reduce_sum(div(X, col(p)), 0), set())),
    ("sum_of_quotient", lambda: (reduce_sum(div(X, col(p)), 1), {div(X, col(p))})),
    ("computed_quotient", lambda: (mul(col(div(x, p)), X), set())),
    ("common_divisor", lambda: (apply(OPS["add"], (div(Z, K), div(Z, exp(K)))), set())),
    ("sum_of_quotient", lambda: (expand_dims(reduce_sum(div(Z, exp(Z)), (2,)), (2,)), set())),
    ("sum_of_quotient", lambda: (expand_dims(reduce_sum(div(Z, K), (2,)), (2,)),
                                 {expand_dims(reduce_sum(div(Z, K), (2,)), (2,))})),
    ("computed_quotient", lambda: (mul(div(expand_dims(reduce_sum(Z, (2,)), (2,)), K), Z),
                                   set())),
])
def test_divisor_rules_leave_other_divisors_and_computed_values(name, make):
    """Two divisors that differ, a column (s / v)[:, None] (s[:, None] is no
    column), a divisor not constant along the summed axis, a quotient the
    forward pass computes and a quotient it does not: no rewrite."""
    node, computed = make()
    assert _divisor_rule(name)(node, computed) is None


def _flipped(a, b):
    """(a b)ᵀ, built as it is written."""
    return apply(OPS["transpose"], (apply(OPS["matmul"], (a, b)),))


def test_computed_symmetric_product_on_the_right():
    """(S P)ᵀ P = P (S P): the forward pass's S P is reused, not transposed."""
    from matcalc.passes.simplify import computed_symmetric_product
    node = apply(OPS["matmul"], (_flipped(S, P), P))
    out = computed_symmetric_product(node, {matmul(S, P)})
    assert out is matmul(P, matmul(S, P))
    for seed in range(2):
        values = _inputs(node, out, seed=seed)
        np.testing.assert_allclose(evaluate(out, values), evaluate(node, values), rtol=1e-10)


@pytest.mark.parametrize("make", [
    lambda: (apply(OPS["matmul"], (S, _flipped(S, A))), {matmul(S, A)}),   # A not symmetric
    lambda: (apply(OPS["matmul"], (S, _flipped(S, P))), set()),            # S P not computed
    lambda: (apply(OPS["matmul"], (P, _flipped(S, P))), {matmul(S, P)}),   # P (S P)ᵀ = P² S
])
def test_computed_symmetric_product_leaves_other_products(make):
    from matcalc.passes.simplify import computed_symmetric_product
    node, computed = make()
    assert computed_symmetric_product(node, computed) is None


def test_computed_symmetric_product_leaves_a_product_only_traced():
    """tr((S⁻¹C) S⁻¹) is a sum the forward pass never forms; naming (S⁻¹C) S⁻¹
    in the derivative would make it form one more product."""
    from matcalc.passes.products import computed_symmetric_product, formed
    t1 = solve(P, S)
    traced = apply(OPS["matmul"], (t1, inv(P)))
    computed = formed([inv(P), t1, traced, apply(OPS["trace"], (traced,))])
    assert traced not in computed and traced in computed.traced
    node = apply(OPS["matmul"], (inv(P), apply(OPS["transpose"], (t1,))))
    assert computed_symmetric_product(node, computed) is None
    assert computed_symmetric_product(node, formed([inv(P), t1])) is matmul(t1, inv(P))


def test_sigmoid_complement_leaves_a_zero_argument_alone():
    """σ(0) + c: the argument is its own negation, and the one term is not a
    pair (the fuzzer's trace(inner / (sigmoid(zeros(K, K)) + 1E-1)))."""
    from matcalc.ops import zeros
    node = add(func("sigmoid", zeros((N, N))), const(sympy.Rational(1, 10)))
    values = _inputs(node, seed=0)
    np.testing.assert_allclose(np.asarray(evaluate(node, values), dtype=float), 0.6)


def test_centred_columns_sum_to_zero():
    """sum(C ⊙ v[None, :], 0) = 0 for C = X − mean(X, 0)[None, :], and a sum
    of terms keeps the others."""
    from matcalc.ops import zeros
    c = _centred(X, 0)
    assert reduce_sum(mul(row(w), c), 0) is zeros((M,))
    assert reduce_sum(add(X, mul(s, c)), 0) is reduce_sum(X, 0)
    assert reduce_sum(mul(row(w), c), 1) is not zeros((N,))     # rows of C do not
    assert reduce_sum(mul(w, c), 0) is zeros((M,))              # a vector is a row
    assert reduce_sum(mul(w, _centred(X, 1)), 1) is not zeros((N,))


def _kept_mean_centred(m, axes, named=False):
    """m − mean(m, axes, keepdims=True), the mean named where `named`."""
    from matcalc.ops import named as name
    mean = div(expand_dims(reduce_sum(m, axes), axes), const(sympy.Mul(*(m.shape[a]
                                                                     for a in axes))))
    return sub(m, name("mu", mean) if named else mean)


@pytest.mark.parametrize("named", [False, True])
def test_centred_arrays_sum_to_zero_along_kept_axes(named):
    """sum(a ⊙ C / d, I) = 0 for C = Z − mean(Z, I, keepdims=True) (its
    mean named or not) and a, d of length 1 along I; a term of a sum is
    dropped; along another axis nothing is; the value is kept."""
    from matcalc.ops import zeros
    c = _kept_mean_centred(Z, (2,), named)
    a = expand_dims(reduce_sum(exp(Z), (2,)), (2,))
    vanishing = mul(a, div(c, K), s)
    assert reduce_sum(vanishing, (2,)) is zeros((N, M))
    total = add(exp(Z), vanishing)
    assert reduce_sum(total, (2,)) is reduce_sum(exp(Z), (2,))
    assert reduce_sum(vanishing, (1,)) is not zeros((N, 2))
    with rulebook.disabled("sum_centred"):
        plain = reduce_sum(total, (2,))
    for seed in range(2):
        values = _inputs(plain, seed=seed)
        np.testing.assert_allclose(np.asarray(evaluate(plain, values), dtype=float),
                                   evaluate(reduce_sum(exp(Z), (2,)), values), rtol=1e-10)


@pytest.mark.parametrize("make", [
    lambda: reduce_sum(div(mul(col(x), X), col(mul(p, p))), 1),
    lambda: reduce_sum(mul(row(w), X, s), 0),
    lambda: col(add(mul(x, p), div(y, p))),
    lambda: mul(X, div(col(x), row(w))),
])
def test_canonical_takes_broadcast_factors_out_of_sums(make):
    """canonical's broadcast_forms: v[:, None] leaves a sum along axis 1 (v ⊙ sum(A, 1),
    sum(A, 1) / v), a column of a product is a product of columns, and
    a ⊙ (b / c) = (a ⊙ b) / c; the value is kept."""
    from matcalc.passes.broadcast_forms import broadcast_forms
    node = make()
    out = broadcast_forms(node, set())
    assert out is not None and out is not node
    values = _inputs(node, seed=0)
    np.testing.assert_allclose(np.asarray(evaluate(out, values), dtype=float),
                               np.asarray(evaluate(node, values), dtype=float), rtol=1e-10)


def test_a_float_coefficient_of_one_is_no_coefficient():
    """2 * 0.5 is 1.0 (SymPy's Float, which is not the Integer 1): the
    gradient of 0.5 * norm(r) ** 2 is r's, never 1.0 * r; -1.0 is a sign."""
    p = matcalc.problem("0.5 * norm(X @ w - y) ** 2 + sum(-0.5 * 2 * w)", X="N x D", w="D",
                        y="N")
    text = str(matcalc.grad(p))
    assert "1.0" not in text and "∂f/∂w = X.T @ t0 - 1" in text
    assert mul(const(2), const(0.5), x) is x and mul(const(-0.5), const(2), x) == neg(x)


def test_textbook_traces_and_diagonals_are_what_the_code_computes():
    """tr(A ⊗ B) is tr(A) tr(B), never the (N D)² Kronecker product; the
    derivative of tr(diag(x) A) by x is diag(A), and I ** 2 is I."""
    source = matcalc.codegen(matcalc.problem("trace(kron(A, B))", A="N x N", B="D x D"))
    assert "kron" not in source.split("def forward")[1] and "np.trace(A)" in source
    text = str(matcalc.grad(matcalc.problem("trace(diag(x) @ A) + sum((eye(N) * A) ** 2)",
                                            A="N x N", x="N")))
    assert "∂f/∂x = diag(A)" in text and "eye(N) ** 2" not in text


def test_a_broadcast_eye_of_one_is_no_identity_for_sum_eye_product():
    """eye(1) broadcast into an N x N product is a matrix of ones: its sum
    is sum(X), not tr(X) (sum_eye_product fired on it: 12 for 36)."""
    module = matcalc.compile(matcalc.problem("sum(eye(1) * X) + sum(eye(1) * X, axis=0) @ x",
                                             X="N x N", x="N"))
    X, v = np.arange(9.0).reshape(3, 3), np.array([1.0, -2.0, 0.5])
    assert module.forward(X, v)[0] == pytest.approx(X.sum() + X.sum(axis=0) @ v)


def test_a_negated_sum_of_negative_terms_is_their_sum():
    """-(-a - b) = a + b: a GP Hessian printed -(t0 @ t0) - (-outer(g0, t1) -
    outer(t1, g0)); with tr(a bᵀ) = aᵀ b and the trace of a sum, it is the
    textbook yᵀK⁻³y − tr(K⁻²)/2 (a @ b and b @ a are like terms)."""
    got = add(neg(matmul(A, B)), neg(add(neg(outer(x, y)), neg(C))))
    assert set(got.args) == {outer(x, y), C, neg(matmul(A, B))}
    p = matcalc.parse("D: N x N symmetric\ny: N\ns: scalar\nK = exp(-D / 2) + s * eye(N)\n"
                      "f = y @ solve(K, y) / 2 + logdet(K) / 2\nwrt s")
    assert "H_s = (2 * (t0 @ t1 @ t1) - trace(t0 @ t0)) / 2" in str(matcalc.hessian(p))


# Problems where a rule's conditions matter: a broadcast or a length a
# rule must not drop (review of session 14: each gave a wrong value or a
# false ShapeError before its rule checked shapes).
SHAPE_GUARDS = [
    ("y @ (b * y)", "y: N sign; b: scalar"),             # sum(b) would lose N
    ("(c * y) @ y + y @ (y * exp(c))", "y: N sign; c: scalar"),
    ("sum((diag(a) + 2 * diag(b)) * X)", "a: 1; b: N; X: N x N"),   # diag(a) broadcasts
    ("sum((v @ (c[:, None] * R)) ** 2)", "R: 1 x K; c: N; v: N"),   # R is no N x K matrix
    ("sum(((C * d) @ u) ** 2)", "C: N x 1; d: K; u: K"),
]


@pytest.mark.parametrize("text, shapes", SHAPE_GUARDS)
def test_rules_keep_sizes_and_broadcasts(text, shapes):
    for seed in (0, 1):
        result = matcalc.check(matcalc.parse(
            "\n".join(s.strip() for s in shapes.split(";")) + f"\nf = {text}\n"), seed=seed)
        assert result.ok and result.value_error < 1e-12, str(result)
