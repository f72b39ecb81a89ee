"""passes/upstream.py: dout goes on the first adjoints only where every
gradient is homogeneous of degree one in them."""

from __future__ import annotations

from matcalc.ir.expr import apply, const, var
from matcalc.ops import OPS
from matcalc.passes.program import Binding, Program
from matcalc.passes.upstream import scale_adjoints

T, X = var("t", (3,)), var("X", (3, 3))
DT = var("dt", (3,))
DOUT = var("dout", ())


def _program(*bindings):
    return Program(None, bindings, "f", (("x", bindings[-1].name),))


def _scaled(gradient):
    """The backward dt = 2 t, then the gradient, with dout moved in (or None)."""
    adjoint = Binding("dt", apply(OPS["mul"], (const(2), T)), "adjoint", "t")
    grad = Binding("dx", gradient, "gradient", "x")
    return scale_adjoints(_program(adjoint, grad), [adjoint, grad], DOUT)


def test_a_linear_gradient_takes_dout_from_its_adjoint():
    bindings, taken = _scaled(apply(OPS["matmul"], (X, DT)))
    assert taken == {"dt"}
    assert bindings[0].expr == apply(OPS["mul"], (const(2), DOUT, T))
    assert bindings[1].expr == apply(OPS["matmul"], (X, DT))


def test_a_sum_of_terms_of_one_degree_is_homogeneous():
    both = apply(OPS["add"], (DT, apply(OPS["matmul"], (X, DT))))
    assert _scaled(both)[1] == {"dt"}


def test_a_gradient_not_homogeneous_in_the_adjoint_keeps_dout_at_the_end():
    assert _scaled(apply(OPS["mul"], (DT, DT))) is None                 # degree two
    assert _scaled(apply(OPS["add"], (DT, T))) is None                  # degrees one and zero
    assert _scaled(apply(OPS["exp"], (DT,))) is None                    # not linear
    assert _scaled(apply(OPS["mul"], (const(3), T))) is None            # made from no adjoint
