"""Second order and Jacobians: Hessian-vector products, Hessians, Jacobians.

All three are forward-mode differentials (`derive.differentials`) of
expressions matcalc already has: the Hessian-vector product is the
differential of the gradient in a direction v (about the cost of two
gradients, never forming the Hessian), the Jacobian-vector product the
differential of the function. `linear.py` then reads off closed forms: the
matrix M with H v = M v for vectors (Xᵀ diag(s ⊙ (1 − s)) X for logistic
regression), the Kronecker form for matrices (I ⊗ (A + Aᵀ) for tr(XᵀAX)).
Where no closed form exists the result stays the linear map, and generated
code applies it to each unit direction to build the full array.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .derive import differentials
from ..errors import MatcalcError, NoEntryError
from ..ir.expr import Expr, Var, const, postorder, rewrite, var
from .gradient import derive, problem_names
from ..hooks import provided
from .linear import NotLinear, kron_of, matrix_of
from ..ops import is_zero, rebuild, symmetric_part, zeros
from ..ir.problem import Problem
from ..passes.program import Names, Program, build
from ..ir.shapes import fmt
from ..passes.simplify import Simplifier


@dataclass(frozen=True)
class Entry:
    """One result: `expr` in `form` ('scalar', 'vector', 'matrix', 'kron' or
    'operator': the linear map of `direction`), with its index `layout`;
    `array_layout` is that of the array generated code returns, whose shape
    is always `shape` (a Kronecker form's rows and columns unstacked)."""

    name: str
    of: str
    expr: Expr
    form: str
    layout: str
    direction: Var | None = None
    shape: tuple = ()
    array_layout: str = ""


@dataclass(frozen=True, eq=False)
class SecondOrder:
    """Hessians, Hessian-vector products or Jacobians of a problem:
    `program` is printed, `code` is the program generated code runs."""

    problem: Problem
    kind: str
    entries: tuple[Entry, ...]
    program: Program
    code: Program

    def __getitem__(self, of: str) -> Expr:
        for e in self.entries:
            if e.of == of:
                return e.expr
        raise NoEntryError(f"no entry of {of!r}: the entries are of", of,
                           [e.of for e in self.entries])

    def __str__(self) -> str:
        return provided("second_order_text")(self)

    def __repr__(self) -> str:
        what = {"hessian": "Hessian", "hvp": "Hessian-vector product",
                "jacobian": "Jacobian"}[self.kind]
        return f"<{what} of {self.problem.function()}: {', '.join(e.name for e in self.entries)}>"

    def latex(self) -> str:
        return provided("second_order_latex")(self)

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"


def _substitute(expr: Expr, old: Expr, new: Expr) -> Expr:
    return rewrite([expr], lambda node, args: new if node is old else rebuild(node, args))[0]


def _simplifier(problem: Problem) -> Simplifier:
    return Simplifier(computed=postorder([problem.output]))


def _program(problem: Problem, entries: list[Entry], names: Names, kind: str) -> SecondOrder:
    simplify = _simplifier(problem)
    entries = [replace(e, expr=simplify(e.expr)) for e in entries]
    results = [(e.name, e.of, e.expr) for e in entries]
    taken = set(names.taken)
    program = build(problem, None, results, {}, names, kind)
    code = build(problem, None, results, {}, Names(taken), kind, numeric=True)
    return SecondOrder(problem, kind, tuple(entries), program, code)


def _scalar_output(problem: Problem, what: str) -> None:
    if problem.output.shape:
        raise MatcalcError(f"{what} needs a scalar function; {problem.output_name} is "
                           f"{fmt(problem.output.shape)} (use jacobian)")


def hvp(problem: Problem) -> SecondOrder:
    """Hv_X = Σ_Y ∂²L/∂X∂Y [v_Y] for each X in wrt, with a direction v_Y
    for each variable: the differential of the gradient along v (the
    layout lists the terms by the problem's own names)."""
    _scalar_output(problem, "a Hessian-vector product")
    g = derive(problem)
    names = problem_names(problem)
    directions = {w: var(names.fresh("v_" + w), problem.variables[w].shape) for w in problem.wrt}
    tangents = {problem.variables[w]: _tangent(problem.variables[w], v)
                for w, v in directions.items()}
    entries = []
    for w in problem.wrt:
        d, _ = differentials(g.shared[w], tangents)
        shape = problem.variables[w].shape
        f = problem.output_name
        terms = " + ".join(f"∂²{f}/∂{w}²[{v.name}]" if u == w else f"∂²{f}/∂{w}∂{u}[{v.name}]"
                           for u, v in directions.items())
        entries.append(Entry("Hv_" + w, w, zeros(shape) if d is None else d, "operator",
                             terms, directions[w], shape, terms))
    return _program(problem, entries, names, "hvp")


def _tangent(variable: Var, v: Var) -> Expr:
    """The direction a variable moves along: (v + vᵀ)/2 for a symmetric one,
    whose derivatives are defined on symmetric directions only; so its full
    Hessian is symmetric in each index pair and as a bilinear form (the
    symmetric G with d²L = <dS, G[dS]>, as its gradient's convention)."""
    return symmetric_part(v) if variable.structure else v


def _form(out_ndim: int, v_ndim: int) -> str:
    return ("scalar", "vector", "matrix")[out_ndim + v_ndim] if out_ndim + v_ndim <= 2 \
        else "kron" if out_ndim == v_ndim == 2 else "operator"


def _linear_map(e: Expr, out_shape: tuple, v: Var) -> tuple[Expr, str]:
    """The closed form of the linear map e(v), and which form it takes."""
    form = _form(len(out_shape), v.ndim)
    if is_zero(e):
        if form == "kron":
            return zeros((out_shape[0] * out_shape[1], v.shape[0] * v.shape[1])), form
        return (zeros(out_shape + v.shape), form) if form != "operator" else (e, form)
    try:
        if not v.shape:
            return _substitute(e, v, const(1)), form
        if form in ("vector", "matrix"):
            return matrix_of(e, v), form
        if form == "kron":
            return kron_of(e, v), form
    except NotLinear:
        pass
    return e, "operator"


def _letters(problem: Problem) -> list[str]:
    """Index names no name of the problem uses (i, j, m, n unless taken)."""
    taken = {*problem.variables, *problem.dims, *problem.intermediates, problem.output_name}
    candidates = [*"ijmnklpqrsuabcefgh", *(f"i{k}" for k in range(1, len(taken) + 5))]
    return [c for c in candidates if c not in taken]


def _layout(form: str, entry, x: tuple[str, tuple], y: tuple[str, tuple], name: str,
            letters: list[str]) -> str:
    """How the entries of the second derivative or Jacobian `name` are laid
    out: `x` and `y` are the (name, shape) of the two index groups,
    `entry(ix, jy)` writes one entry given their index strings, `letters`
    the index letters to use."""
    (xn, xs), (yn, ys) = x, y
    start = max(2, len(xs))  # a matrix's indices i, j then m, n; more for more axes
    i, j = letters[:len(xs)], letters[start:start + len(ys)]
    text = entry(f"[{', '.join(i)}]" if i else "", f"[{', '.join(j)}]" if j else "")
    if form == "kron":
        return (f"vec stacks columns: "
                f"{name}[{i[0]} + {xs[0]}·{i[1]}, {j[0]} + {ys[0]}·{j[1]}] = {text}")
    if form == "operator":
        return (f"the array [{', '.join(i + j)}] = {text} (the indices of {xn}, "
                f"then those of {yn})")
    return f"[{', '.join(i + j)}] = {text}" if i + j else text


def _second(problem: Problem, names: Names, of: Expr, out: tuple[str, tuple], y: str,
            entry, name: str, label: str) -> Entry:
    """The derivative of `of` (named `out[0]`, of shape `out[1]`) by the
    variable `y`: the differential of `of` in a fresh direction v, read off
    as a closed form where one exists; `entry(i, j)` writes one entry."""
    yv = problem.variables[y]
    v = var(names.fresh("v_" + y), yv.shape)
    d, _ = differentials(of, {yv: _tangent(yv, v)})
    d = zeros(out[1]) if d is None else _simplifier(problem)(d)
    expr, form = _linear_map(d, out[1], v)
    letters = _letters(problem)
    layout = _layout(form, entry, out, (y, yv.shape), name, letters)
    array = _layout("operator" if form == "kron" else form, entry, out, (y, yv.shape), name,
                    letters)
    return Entry(name, label, expr, form, layout, v, out[1] + yv.shape, array)


def hessian(problem: Problem, wrt=None) -> SecondOrder:
    """∂²L/∂x² (or ∂²L/∂x∂y for two names) in closed form where one exists:
    the Jacobian of the gradient ∂L/∂x by y. With no names and several
    variables to differentiate by, every block ∂²L/∂x∂y on and above the
    diagonal (those below are their transposes)."""
    _scalar_output(problem, "a Hessian")
    if wrt is None and len(problem.wrt) > 1:
        pairs = [(x, y) for i, x in enumerate(problem.wrt) for y in problem.wrt[i:]]
    else:
        pairs = [_pair(problem.with_wrt(wrt).wrt if wrt is not None else problem.wrt)]
    gradients = {x: derive(problem.with_wrt([x])).shared[x] for x, _ in pairs}  # each alone
    names = problem_names(problem)
    f = problem.output_name
    entries, taken = [], set()
    for x, y in pairs:
        label = f"{x}" if x == y else f"{x},{y}"
        name = "H_" + label.replace(",", "_")
        while name in taken:  # H_a_b_c of (a, b_c) and of (a_b, c)
            name += "_"
        taken.add(name)
        entries.append(_second(problem, names, gradients[x], (x, problem.variables[x].shape), y,
                               lambda i, j, x=x, y=y: f"∂²{f}/∂{x}{i}∂{y}{j}", name, label))
    return _program(problem, entries, names, "hessian")


def _pair(names: tuple) -> tuple[str, str]:
    if len(names) not in (1, 2):
        raise MatcalcError(f"a Hessian is by one variable or a pair, e.g. {names[0]!r} or "
                           f"'{names[0]},{names[1]}', not the {len(names)} variables "
                           f"{', '.join(names)}")
    return names[0], names[-1]


def jacobian(problem: Problem, wrt=None) -> SecondOrder:
    """∂f/∂x for each x in wrt: diag(s) − s sᵀ for softmax, A for A @ x, ..."""
    names = problem_names(problem)
    which = problem.with_wrt(wrt).wrt if wrt is not None else problem.wrt
    f = problem.output_name
    entries = [_second(problem, names, problem.output, (f, problem.output.shape), x,
                       lambda i, j, x=x: f"∂{f}{i}/∂{x}{j}", "J_" + x, x) for x in which]
    return _program(problem, entries, names, "jacobian")
