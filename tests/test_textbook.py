"""Printed programs in the form a textbook prints (the table is in
`textbook_table.py`).

Every row is a problem and the gradients as a textbook writes them: a small
program of assignments in matcalc's language (`r = A @ x - y; dx = 2 * A.T
@ r`). matcalc's result is its `Program`, the named bindings behind the
printed text of `matcalc grad` (the text itself is not parsed). Each row is
checked four ways:

* the textbook program is right: each of its gradients, inlined, against
  central differences of the function at random inputs in its domain (so
  the table cannot hold a wrong formula);
* same form: matcalc's program and the textbook's, each with its
  intermediates inlined, have the same canonical node
  (`matcalc.passes.simplify.canonical`, as in `test_identities.py`: up to
  the order of commutative terms, the distributive law, and the names of
  intermediates);
* never more operations: `operations(matcalc's program)` is at most
  `operations(the textbook's)`, counted over the printed lines (see
  `operations`);
* clean: matcalc's printed lines have no alias line, no uncancelled
  constant, no uncollected like terms, no constant inside a matrix
  product's operand, no do-nothing wrapper, no
  recomputed subexpression and no materialised broadcast (see `FLAWS`).

A row that matcalc does not yet print in the textbook's form is marked
`xfail(strict=True)` with what differs; the table is never weakened to
matcalc's form.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import sympy

import matcalc
from matcalc.checks import verify
from matcalc.ir.expr import Apply, Const, Var, is_op, rewrite
from matcalc.ops import OPS, mul, rebuild
from matcalc.passes.simplify import canonical
from matcalc.targets.evaluation import evaluate

from conftest import ROOT, close_to
from textbook_table import ROWS, Row

assert len({r.id for r in ROWS}) == len(ROWS), "row ids must be unique"

# Operators that compute nothing: views and the marks of names.
VIEWS = frozenset({"transpose", "col", "row", "expand_dims", "name", "adjoint"})


# ----------------------------------------------------------- the program ---

@functools.lru_cache(maxsize=None)
def matcalc_program(row: Row):
    """matcalc's gradient of the row: (problem, printed bindings, {variable:
    binding name}, the upstream gradient of an array-valued function)."""
    g = matcalc.grad(row.problem())
    program = g.program
    printed = program.needed(name for _, name in program.gradients)
    return g.problem, tuple((b.name, b.expr) for b in printed), dict(program.gradients), \
        program.seed


def forward_names(row: Row) -> set[str]:
    """The names a gradient may equal without an alias line: matcalc's
    forward values, and the adjoints of the user's named intermediates (the
    seeds' db1 = dz1 for z1 = w1 x + b1)."""
    g = matcalc.grad(row.problem())
    return {b.name for b in g.program.bindings if b.role in ("forward", "value")
            or (b.role == "adjoint" and b.of in g.problem.intermediates)}


@functools.lru_cache(maxsize=None)
def textbook_program(row: Row):
    """The textbook's program parsed over the problem's variables: ((name,
    line), ...) where each line refers to earlier ones through their `name`
    nodes."""
    p, _, _, seed = matcalc_program(row)
    decls = [row.decls]
    if seed is not None:
        shape = " x ".join(str(d) for d in seed.shape)
        decls.append(f"{seed.name}: {shape}")
    q = matcalc.parse("\n".join(decls) + "\n" + row.textbook)
    lines = tuple((n, e.args[0] if is_op(e, "name") else e) for n, e in q.intermediates.items())
    return q, lines


def inline_program(bindings) -> dict:
    """Each binding's expression with the earlier bindings substituted."""
    done: dict[str, object] = {}
    for name, expr in bindings:
        def visit(node, args):
            if isinstance(node, Var) and node.name in done:
                return done[node.name]
            return rebuild(node, args)
        done[name] = rewrite([expr], visit)[0]
    return done


def inline_textbook(lines) -> dict:
    return {name: expr for name, expr in lines}   # name nodes hold their lines already


# --------------------------------------------------------- the operations ---

def _is_reference(node) -> bool:
    """A reference to an earlier line: a binding's name, or a textbook
    line's `name` node."""
    return isinstance(node, Var) or is_op(node, "name")


def _own(node) -> int:
    """The operations one node adds: a sum of k terms k − 1, a product of k
    factors k − 1 (a coefficient −1 is free: it folds into a subtraction or
    a neighbouring scale), a view none, anything else one."""
    if not isinstance(node, Apply) or node.op in VIEWS:
        return 0
    if node.op in ("add", "mul"):
        free = node.op == "mul" and isinstance(node.args[0], Const) and node.args[0].value == -1
        return len(node.args) - 1 - free
    return 1


def operations(line) -> int:
    """The operations a printed line performs, counted on its expression
    as a tree (a subexpression written twice counts twice); references to
    earlier lines, variables and constants cost nothing."""
    total, stack = 0, [(line, True)]
    while stack:
        node, top = stack.pop()
        if not top and _is_reference(node):
            continue
        total += _own(node)
        stack.extend((a, False) for a in node.args)
    return total


def program_operations(lines) -> int:
    return sum(operations(expr) for _, expr in lines)


# -------------------------------------------------------------- the flaws ---

def _tree(expr):
    """Every node of a line as a tree, without entering references."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, Var):
            stack.extend(a for a in node.args if not isinstance(a, Var))
            yield from (a for a in node.args if isinstance(a, Var))


def _coefficient(node):
    """The constant coefficient of a product (1 if none)."""
    while is_op(node, "name", "adjoint"):
        node = node.args[0]
    if is_op(node, "mul") and isinstance(node.args[0], Const):
        return node.args[0].value
    if isinstance(node, Const):
        return node.value
    return sympy.Integer(1)


def _scaled(node, bodies) -> bool:
    """A product with a constant other than ±1, or a constant divided by
    something (through a binding's name)."""
    if isinstance(node, Var) and node.name in bodies:
        node = bodies[node.name]
    if is_op(node, "div"):
        return isinstance(node.args[0], Const) and abs(node.args[0].value) != 1
    return is_op(node, "mul", "adjoint", "name") and abs(_coefficient(node)) != 1


def alias_lines(bindings, gradients, forward) -> list[str]:
    """`g0 = t0`, `dX = dt0`: a line that only renames another (a gradient
    equal to a forward value or to the adjoint of a named intermediate keeps
    its line: a result has its name)."""
    bound = {n for n, _ in bindings}
    return [f"{n} = {e.name}" for n, e in bindings
            if isinstance(e, Var) and e.name in bound
            and not (n in gradients and e.name in forward)]


def uncancelled_constants(bindings, gradients, forward) -> list[str]:
    """`2 * (lam / 2)`, `2 * g0` with `g0 = lam / 2`: two constants in one
    product."""
    bodies = dict(bindings)
    found = []
    for n, e in bindings:
        for node in _tree(e):
            if is_op(node, "mul", "matmul") and (
                    sum(_scaled(a, bodies) or isinstance(a, Const) and abs(a.value) != 1
                        for a in node.args) > 1):
                found.append(f"{n}: {node}")
    return found


def uncollected_terms(bindings, gradients, forward) -> list[str]:
    """`g0 + g0`, `-(A) - A`: a sum with two terms alike up to a constant
    (compared with every reference inlined)."""
    found = []
    for n, e in bindings:
        for node in _tree(e):
            if not is_op(node, "add"):
                continue
            rests = [_without_coefficient(canonical(inline_program([*bindings, ("", t)])[""]))
                     for t in node.args]
            if len(set(rests)) < len(rests):
                found.append(f"{n}: {node}")
    return found


def _without_coefficient(node):
    if is_op(node, "mul") and isinstance(node.args[0], Const):
        return mul(*node.args[1:])
    return node


def buried_scales(bindings, gradients, forward) -> list[str]:
    """`X @ -(A @ B)`, `t0 @ (0.5 * R.T)`: a constant inside an operand of
    a matrix product, where it scales the product."""
    found = []
    for n, e in bindings:
        for node in _tree(e):
            if is_op(node, "matmul", "outer") and any(
                    is_op(a, "mul") and isinstance(a.args[0], Const) for a in node.args):
                found.append(f"{n}: {node}")
    return found


def do_nothing_wrappers(bindings, gradients, forward) -> list[str]:
    """`sum(v[:, None], axis=1)`: a sum over axes of length 1 (`sum(x[:, :,
    None], axis=2)` too), or of a scalar; a transpose of a transpose."""
    found = []
    for n, e in bindings:
        for node in _tree(e):
            if is_op(node, "sum"):
                axis, x = node.param("axis"), node.args[0]
                axes = range(x.ndim) if axis is None else (axis,) if isinstance(axis, int) \
                    else axis
                if all(x.shape[a] == 1 for a in axes):
                    found.append(f"{n}: {node}")
            if is_op(node, "transpose") and is_op(node.args[0], "transpose"):
                found.append(f"{n}: {node}")
    return found


def recomputation(bindings, gradients, forward) -> list[str]:
    """One subexpression computed twice (in one line or in two)."""
    count: dict = {}
    for _, e in bindings:
        for node in _tree(e):
            if isinstance(node, Apply) and node.op not in VIEWS and node.args \
                    and not OPS[node.op].cheap:
                count[node] = count.get(node, 0) + 1
    return [str(node) for node, k in count.items() if k > 1]


def materialised_broadcasts(bindings, gradients, forward) -> list[str]:
    """`ones(N, O) * v`, `c * eye(N) + A`: a constant array formed only to
    broadcast or to be added (a result that is itself `c I` or `c 1` is the
    answer, not a broadcast)."""
    found = []
    for n, e in bindings:
        for node in _tree(e):
            if is_op(node, "mul", "add", "matmul", "div") and any(
                    is_op(a, "ones", "zeros") or
                    (is_op(a, "eye") and node.op != "mul") for a in node.args):
                found.append(f"{n}: {node}")
    return found


FLAWS = [alias_lines, uncancelled_constants, uncollected_terms, buried_scales, do_nothing_wrappers,
         recomputation, materialised_broadcasts]


def flaws(row: Row) -> dict[str, list[str]]:
    """Every flaw of matcalc's printed program for the row, by kind."""
    _, bindings, grads, _ = matcalc_program(row)
    gradients, forward = set(grads.values()), forward_names(row)
    out = {}
    for check in FLAWS:
        found = check(bindings, gradients, forward)
        if found:
            out[check.__name__] = found
    return out


# ---------------------------------------------------------------- numbers ---

def finite_gradients(row: Row, seed: int):
    """Random inputs in the problem's domains (with the upstream gradient of
    an array-valued function) and central differences of the function, or
    of ⟨upstream, function⟩, by each variable of `wrt`."""
    p = row.problem()
    module = matcalc.compile(p)
    dims = verify.sizes(p, dict(row.dims))
    rng = np.random.default_rng(seed)
    values = verify.draw(p, dims, rng)
    order = list(p.variables)
    _, _, _, upstream = matcalc_program(row)
    if upstream is not None:
        shape = tuple(int(d.subs({p.dims[k]: v for k, v in dims.items()}))
                      for d in upstream.shape)
        values[upstream.name] = rng.standard_normal(shape)

    def f(point):
        out = module.forward(*(point[n] for n in order))[0]
        return float(np.sum(out * values[upstream.name]) if upstream is not None else out)

    fd = {}
    for w in p.wrt:
        symmetric = bool(p.variables[w].structure)
        d = verify.finite_differences(f, values, w, 1e-6, symmetric=symmetric)
        fd[w] = d / (2 - np.eye(len(d))) if symmetric else d
    return {**values, **dims}, fd


# ------------------------------------------------------------------ tests ---

def _params(check: str):
    out = []
    for r in ROWS:
        reason = r.failing.get(check)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(r, id=r.id, marks=marks))
    return out


def test_the_table_is_large_and_broad():
    assert len(ROWS) >= 60
    kinds = {r.kind for r in ROWS}
    assert kinds == {"cookbook", "seed", "ml"}
    assert sum(r.kind == "cookbook" for r in ROWS) >= 15
    assert sum(r.kind == "seed" for r in ROWS) >= 5
    assert sum(r.kind == "ml" for r in ROWS) >= 30


@pytest.mark.parametrize("row", _params("numeric"))
def test_textbook_program_is_right(row):
    """Each textbook gradient, inlined, against central differences."""
    q, lines = textbook_program(row)
    inlined = inline_textbook(lines)
    for seed in (0, 1):
        values, fd = finite_gradients(row, seed)
        for w in row.problem().wrt:
            got = evaluate(inlined["d" + w], values)
            assert close_to(got, fd[w]), f"{row.id}: the textbook's d{w} is not the gradient"


@pytest.mark.parametrize("row", _params("form"))
def test_same_form(row):
    """matcalc's program, inlined, is the textbook's up to canonical order."""
    p, bindings, grads, _ = matcalc_program(row)
    _, lines = textbook_program(row)
    mine, theirs = inline_program(bindings), inline_textbook(lines)
    for w, name in grads.items():
        assert canonical(mine[name]) is canonical(theirs["d" + w]), (
            f"{row.id}, d{w}: matcalc {mine[name]}\n textbook {theirs['d' + w]}")


@pytest.mark.parametrize("row", _params("operations"))
def test_no_more_operations(row):
    _, bindings, _, _ = matcalc_program(row)
    _, lines = textbook_program(row)
    mine, theirs = program_operations(bindings), program_operations(lines)
    assert mine <= theirs, (
        f"{row.id}: matcalc {mine} operations, the textbook {theirs}:\n"
        + "\n".join(f"  {n} = {e}" for n, e in bindings))


@pytest.mark.parametrize("row", _params("clean"))
def test_clean(row):
    found = flaws(row)
    _, bindings, _, _ = matcalc_program(row)
    assert not found, f"{row.id}: {found}\n" + "\n".join(f"  {n} = {e}" for n, e in bindings)


# ------------------------------------------------ the checks themselves ---

def _flawed_programs():
    """Programs with one flaw each, as the issue reports them, built without
    the builders (as the program builder binds its lines)."""
    from matcalc.ir.expr import apply, const, var
    n, k = sympy.symbols("N K")
    x, w = var("x", (n,)), var("w", (n,))
    lam, t0, g0 = var("lam", ()), var("t0", (n,)), var("g0", ())
    X = var("X", (n, k))
    op = lambda name, *args, **params: apply(OPS[name], args, tuple(params.items()))  # noqa: E731
    half_lam = op("mul", const(sympy.Rational(1, 2)), lam)
    summed = op("sum", op("col", op("mul", const(-1), op("sum", X, axis=1))), axis=1)
    return {
        "alias_lines": [("t0", op("exp", x)), ("g0", t0), ("dw", op("mul", g0, w))],
        "uncancelled_constants": [("g0", half_lam), ("dw", op("mul", const(2), g0, w))],
        "uncollected_terms": [("t0", op("exp", x)), ("dx", op("add", t0, t0))],
        "do_nothing_wrappers": [("dx", summed)],
        "recomputation": [("dx", op("add", op("exp", x), op("mul", w, op("exp", x))))],
        "materialised_broadcasts": [("dX", op("mul", op("ones", shape=(k, n)), x))],
        "buried_scales": [("dw", op("matmul", X, op("mul", const(-1), op("exp", op("sum", X,
                                                                                  axis=0)))))],
    }


@pytest.mark.parametrize("kind", [c.__name__ for c in FLAWS])
def test_each_check_finds_its_flaw(kind):
    """Each check fires on the flaw it names, and only that check does."""
    bindings = _flawed_programs()[kind]
    gradients = {bindings[-1][0]}
    fired = {c.__name__ for c in FLAWS if c(bindings, gradients, set())}
    assert kind in fired
    assert fired <= {kind, "recomputation"} | ({"alias_lines"} if kind == "uncancelled_constants"
                                                else set())


def test_operations_are_counted_on_the_printed_tree():
    """A view and a reference are free, a sum of three terms costs two, −x
    folds into its sum, a subexpression written twice costs twice."""
    p = matcalc.parse("A: N x D; x: D; y: N\nr = A @ x - y\nf = sum(r ** 2)")
    r = p.intermediates["r"]
    assert operations(r.args[0]) == 2                  # matmul, subtraction
    assert operations(p.expr("A.T @ r")) == 1          # the transpose is a view
    assert operations(p.expr("exp(A @ x) + sin(A @ x) + y")) == 6
    assert operations(p.expr("-(A @ x)")) == 1


@pytest.mark.parametrize("row", _params("numeric"))
def test_canonical_keeps_the_value(row):
    """The canonical form of each textbook gradient has its value (so two
    forms with one canonical node are equal)."""
    _, lines = textbook_program(row)
    inlined = inline_textbook(lines)
    values, fd = finite_gradients(row, 0)
    for w in row.problem().wrt:
        got = evaluate(canonical(inlined["d" + w]), values)
        assert close_to(got, fd[w]), f"{row.id}: canonical(d{w}) is not the gradient"


def test_sigmoid_chain_hessian_collects_its_common_factors():
    """`matcalc hessian examples/sigmoid_chain.mc --wrt w1,w2` was a sum of
    six products, five of them repeating a1 a2 (1 − a2) w3 a3 (1 − a3):
    the shared factors are now multiplied once (a1 is a factor of one
    product), and the program has none of the flaws above."""
    from pathlib import Path
    text = (Path(__file__).parent.parent / "examples" / "sigmoid_chain.mc").read_text()
    h = matcalc.hessian(matcalc.parse(text), "w1,w2")
    printed = h.program.needed(n for _, n in h.program.gradients)
    bindings = [(b.name, b.expr) for b in printed]
    result = bindings[-1][1]
    assert sum(isinstance(n, Var) and n.name == "a1" for n in _tree(result)) == 1
    forward = {b.name for b in printed if b.role == "forward"}
    for check in FLAWS:
        assert not check(bindings, {bindings[-1][0]}, forward), check.__name__


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.mc")), ids=lambda p: p.stem)
def test_numbered_names_have_no_gaps(path):
    """Shared backward values are g0, g1, ... in order: a number given to a
    node that then needed no line (an alias) is not left out."""
    program = matcalc.grad(matcalc.parse(path.read_text("utf-8"))).program
    numbered = [b.name for b in program.bindings
                if b.role == "backward" and b.name[:1] == "g" and b.name[1:].isdigit()]
    assert numbered == [f"g{k}" for k in range(len(numbered))]
