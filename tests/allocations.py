"""What a generated module allocates, by node of its lowered program.

`allocations(exprs)` lists every array the NumPy code printed for `exprs`
makes, as (node, number of elements, a SymPy expression in the dimensions):
each operator node that `emit.NumpyPrinter` prints as an array expression,
the `np.ones`/`np.eye`/`np.zeros` constructors and broadcast products
included. Views (`.T`, `[:, None]`, `[None, :]`), names and adjoint marks
allocate nothing, nor do the operands einsum consumes without forming them
(`x ** 2` in `sum(x ** 2)` of a variable, `A @ B` in `trace(A @ B)`).
`excess(gradient)` is the allocations of value_and_grad (or of a
second-order function, `excess(gradient, program)`) that are larger
than the largest array the forward pass receives or computes (or that the
user's own text builds: outer, kron, eye, ones, zeros), tested at several
assignments of the dimensions, so a size that is larger for some sizes is
found.
"""

from __future__ import annotations

import itertools

import sympy

from matcalc.passes.lowering import SQUARES, squared
from matcalc.ir.expr import Apply, Var, postorder

# Nodes the printer writes as a view of their argument, or not at all.
VIEWS = frozenset({"transpose", "col", "row", "name", "adjoint"})
# Operators whose node is a constructor the user may write.
CONSTRUCTORS = frozenset({"outer", "kron", "eye", "ones", "zeros"})


def _not_formed(node) -> list:
    """The arguments of `node` that its NumPy form reads without forming."""
    if node.op == "sum" and node.param("axis") is None:
        x = squared(node.args[0])
        if isinstance(x, Var) and x.ndim in SQUARES:
            return [node.args[0]]
    if node.op == "trace" and isinstance(node.args[0], Apply) and node.args[0].op == "matmul":
        return [node.args[0]]
    return []


def allocations(exprs) -> list:
    """(node, size) for every array node the printed code of `exprs` makes."""
    skipped = set()
    out = []
    nodes = list(postorder(list(exprs)))
    for node in reversed(nodes):  # parents first, so skipped children are known
        if isinstance(node, Apply):
            skipped.update(_not_formed(node))
    for node in nodes:
        if isinstance(node, Apply) and node.shape and node.op not in VIEWS \
                and node not in skipped:
            out.append((node, sympy.Mul(*node.shape)))
    return out


def size(shape) -> sympy.Expr:
    return sympy.Mul(*shape) if shape else sympy.Integer(1)


def bound(problem, forward) -> list:
    """The sizes the forward pass receives or computes (`forward`: its
    bindings), and the sizes of the constructors the user's own text holds."""
    sizes = [size(v.shape) for v in problem.variables.values()]
    sizes += [s for _, s in allocations(b.expr for b in forward)]
    sizes += [size(n.shape) for n in postorder([problem.output])
              if isinstance(n, Apply) and n.op in CONSTRUCTORS]
    return sizes


def assignments(dims) -> list[dict]:
    """Dimension sizes to compare at: all large and distinct, and each
    dimension (and each pair) far larger than the rest."""
    dims = sorted(dims, key=str)
    out = [{d: 1000 + 7 * k for k, d in enumerate(dims)}]
    for group in itertools.chain.from_iterable(
            itertools.combinations(dims, r) for r in (1, 2)):
        out.append({d: 10 ** 6 if d in group else 10 + k for k, d in enumerate(dims)})
    return out


def excess(gradient, program=None) -> list:
    """The allocations of `program` (by default the gradient's, which
    value_and_grad runs; or a second-order one) larger than every size in
    `bound` at some assignment of the dimensions, as (node, size)."""
    program = program or gradient.program
    limit = bound(gradient.problem, gradient.program.forward())
    if program.seed is not None:
        limit.append(size(program.seed.shape))
    found = allocations(b.expr for b in program.bindings)
    dims = set().union(*(s.free_symbols for _, s in found), *(s.free_symbols for s in limit))
    out = []
    for node, s in found:
        for at in assignments(dims):
            if s.subs(at) > max((b.subs(at) for b in limit), default=1):
                out.append((node, s))
                break
    return out


def described(found) -> str:
    from matcalc.targets.text import TextPrinter
    return "; ".join(f"{TextPrinter().doprint(n)[:80]} ({s} elements)" for n, s in found)

