"""passes/upstream.py: dout goes on the first adjoints only where every
gradient is homogeneous of degree one in them."""

from __future__ import annotations

from matcalc.ir.expr import apply, const, var
from matcalc.ops import OPS
from matcalc.passes.program import Binding, Program
from matcalc.passes.upstream import DOUT as SEED, scale_adjoints

T, X = var("t", (3,)), var("X", (3, 3))
DT = var("dt", (3,))
DOUT = var(SEED, ())  # the upstream scalar: a name no problem declares


def _program(*bindings):
    return Program(None, bindings, "f", (("x", bindings[-1].name),))


def _scaled(gradient):
    """The backward dt = 2 t, then the gradient, with dout moved in, and the
    expressions before ({} where it is not)."""
    adjoint = Binding("dt", apply(OPS["mul"], (const(2), T)), "adjoint", "t")
    grad = Binding("dx", gradient, "gradient", "x")
    return scale_adjoints(_program(adjoint, grad), [adjoint, grad])


def test_a_linear_gradient_takes_dout_from_its_adjoint():
    bindings, before = _scaled(apply(OPS["matmul"], (X, DT)))
    assert before == {"dt": apply(OPS["mul"], (const(2), T))}
    assert bindings[0].expr == apply(OPS["mul"], (apply(OPS["mul"], (const(2), DOUT)), T))
    assert bindings[1].expr == apply(OPS["matmul"], (X, DT))


def test_a_sum_of_terms_of_one_degree_is_homogeneous():
    both = apply(OPS["add"], (DT, apply(OPS["matmul"], (X, DT))))
    assert set(_scaled(both)[1]) == {"dt"}


def test_a_gradient_not_homogeneous_in_the_adjoint_keeps_dout_at_the_end():
    for gradient in (apply(OPS["mul"], (DT, DT)),        # degree two
                     apply(OPS["add"], (DT, T)),         # degrees one and zero
                     apply(OPS["exp"], (DT,)),           # not linear
                     apply(OPS["mul"], (const(3), T))):  # made from no adjoint
        bindings, before = _scaled(gradient)
        assert before == {} and bindings[0].expr == apply(OPS["mul"], (const(2), T))
