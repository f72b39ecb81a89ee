"""A problem: declared variables, named intermediates, the function, `wrt`."""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from .expr import Expr, Var, const, is_op
from ..errors import MatcalcError
from ..hooks import provided


@dataclass(frozen=True, eq=False)
class Problem:
    """A scalar or array function of declared variables, to differentiate.

    `variables` and `intermediates` keep declaration order; `output` is the
    function (the last intermediate, or a bare expression named `f`); `wrt`
    names the variables to differentiate by; `written` holds each
    definition's text as the user wrote it (comments and line breaks taken
    out), which headers print instead of the built, rewritten form.
    """

    variables: dict[str, Var]
    dims: dict[str, sympy.Symbol]
    intermediates: dict[str, Expr]
    output: Expr
    output_name: str
    wrt: tuple[str, ...]
    source: str | None = field(default=None, repr=False)
    filename: str | None = None
    written: dict[str, str] = field(default_factory=dict, repr=False)

    def scope(self) -> dict[str, Expr]:
        """Every name an expression over this problem may use."""
        return {**{n: const(s) for n, s in self.dims.items()}, **self.variables,
                **self.intermediates}

    def expr(self, text: str) -> Expr:
        """An expression over this problem's names, e.g. `p.expr("X @ W1")`."""
        if not isinstance(text, str):
            raise MatcalcError(f"expected expression text, got {type(text).__name__}")
        return provided("parse_expr")(text, self.scope())

    def with_wrt(self, wrt) -> "Problem":
        """The same problem differentiated by other variables."""
        return Problem(self.variables, self.dims, self.intermediates, self.output,
                       self.output_name, provided("check_wrt")(self, wrt), self.source,
                       self.filename, self.written)

    def __str__(self) -> str:
        return provided("problem_text")(self)

    def __repr__(self) -> str:
        return f"<Problem {self.function()} wrt {', '.join(self.wrt)}>"

    def function(self, width: int = 60) -> str:
        """`f = ...`: the function as written (cut at `width` characters)."""
        node = self.output.args[0] if is_op(self.output, "name") else self.output
        text = self.written.get(self.output_name) or provided("to_text")(node)
        text = text if len(text) <= width else text[:width - 1] + "…"
        return f"{self.output_name} = {text}"

    def _repr_latex_(self) -> str:
        return f"$${provided('problem_latex')(self)}$$"
