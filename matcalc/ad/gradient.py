"""The gradients of a problem: derived, simplified, named, printable."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from .derive import gradients
from ..errors import NoEntryError
from ..ir.expr import Apply, Expr, Var, const, postorder, rewrite, var
from ..hooks import provided
from ..ops import rebuild, symmetric_part
from ..ir.problem import Problem
from ..passes.program import Names, Program, build
from ..passes.simplify import Simplifier
from .steps import Derivation, derivation


@dataclass(frozen=True, eq=False)
class Gradient:
    """∂L/∂X for each X in `problem.wrt`, in closed form.

    For a scalar function L, `exprs[X]` is the gradient (the shape of X);
    for an array-valued S it is the vector-Jacobian product given the
    upstream gradient `seed` (named dS). `program` names the shared parts
    as printed (`code`: as generated code computes them, scales moved onto
    the products they feed);
    `shared[X]` is `exprs[X]` with its shared adjoints still marked, so a
    long chain stays nested (second order differentiates that form).
    `steps` is the derivation, step by step (made when first asked for).
    """

    problem: Problem
    exprs: dict[str, Expr]
    seed: Var | None
    program: Program
    shared: dict[str, Expr] | None = None
    code: Program | None = None      # the program generated code computes

    def __getitem__(self, name: str) -> Expr:
        if name not in self.exprs:
            raise NoEntryError(f"no gradient by {name!r}: the gradients are by", name,
                               list(self.exprs))
        return self.exprs[name]

    def __iter__(self):
        return iter(self.exprs.items())

    def __str__(self) -> str:
        return provided("program_text")(self.program, self.problem)

    def __repr__(self) -> str:
        given = f" given {self.seed.name}" if self.seed is not None else ""
        return f"<Gradient of {self.problem.function()} by {', '.join(self.exprs)}{given}>"

    def latex(self) -> str:
        return provided("program_latex")(self.program, self.problem)

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"

    @cached_property
    def steps(self) -> Derivation:
        """The derivation step by step (see `matcalc.ad.steps`)."""
        return derivation(self)

    def derivation(self) -> Derivation:
        """The derivation step by step, `self.steps`."""
        return self.steps


def problem_names(problem: Problem) -> Names:
    """Fresh names for a problem's results: every name its text declares is taken."""
    return Names(set(problem.variables) | set(problem.dims) | set(problem.intermediates)
                 | {problem.output_name})


def derive(problem: Problem) -> Gradient:
    """Derive, simplify and name the gradients of `problem` by `problem.wrt`."""
    names = problem_names(problem)
    seed = None
    if problem.output.shape:
        seed = var(names.fresh("d" + problem.output_name), problem.output.shape)
    wrt = [problem.variables[w] for w in problem.wrt]
    grads, adjoint = gradients(problem.output, wrt, seed if seed is not None else const(1))
    grads = [symmetric_part(g) if w.structure else g for w, g in zip(wrt, grads)]
    simplify = Simplifier(computed=postorder([problem.output]))
    grads = [simplify(g) for g in grads]
    adjoint = {node: simplify(a) for node, a in adjoint.items()}
    results = [("d" + w, w, g) for w, g in zip(problem.wrt, grads)]
    taken = set(names.taken)
    program = build(problem, seed, results, adjoint, names, textbook=True)
    code = build(problem, seed, results, adjoint, Names(taken))
    return Gradient(problem, dict(zip(problem.wrt, _without_marks(grads))), seed, program,
                    dict(zip(problem.wrt, grads)), code)


def _without_marks(exprs: list[Expr]) -> list[Expr]:
    """The expressions with the `adjoint` marks dissolved (as they print)."""
    return rewrite(exprs, lambda node, args: args[0] if isinstance(node, Apply)
                   and node.op == "adjoint" else rebuild(node, args))
