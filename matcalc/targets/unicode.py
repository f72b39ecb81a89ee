"""Readable Unicode text for terminals: Xᵀ·δZ₁, (δt₁·W₂ᵀ) ⊙ 𝟙[Z₁ > 0], ∑₀δZ₁.

The notation, one rule each:

* `A·B` is the matrix product (`A @ B`) and also a product with a scalar
  (`2/N·t₁`, `2·t₀·a₃·(1 - a₃)`); `A ⊙ B` is the elementwise product of two
  arrays; `A / B` is elementwise division (a constant or dimension
  denominator is written tight: `t₁/N`, `2/N`).
* `Xᵀ` transpose, `X⁻¹` inverse, `X⁻ᵀ` the transposed inverse.
* `X²`, `x⁻³`: integer powers as superscripts; other exponents `X^0.5`,
  `X^(p + 1)`. Powers are elementwise, as `**` in the input.
* `∑X` is the sum of all entries, `∑₀X` the sum over axis 0 (column sums,
  NumPy's `X.sum(axis=0)`), `∑₁X` the sum over axis 1 (row sums).
* `𝟙[x > 0]` is `step(x)`, `σ(x)` is `sigmoid(x)`, `tr(A)` trace,
  `log det(A)`, `|x|`, `√x`, `‖x‖`, `x·yᵀ` for `outer(x, y)`, `A ⊗ B` for
  `kron`, `A⁻¹·B` for `solve(A, B)`, `I` for `eye(n)`, a column `b[:, None]`
  is `b` and a row `b[None, :]` is `bᵀ`; every other function keeps its text
  form (`relu(Z₁)`, `softmax(x, axis=1)`).
* Names: trailing digits become subscripts (`W1` → `W₁`, `x_2` → `x₂`),
  Greek names become letters (`alpha` → `α`); as in every printed output,
  `δZ₁` is the adjoint ∂loss/∂Z₁ of an intermediate, `∂loss/∂W₁` a
  gradient and `dZ₁` a differential (the generated code keeps `dZ1`,
  `dW1`). Names that would print alike (`W1` and `W_1`) keep their text
  spelling.

This printer is the text printer with its own `_print_<op>` methods and a
forms registry of the functions written under another name (`FORMS`); it
falls back to the text form for anything else. It is for reading, not for
parsing back (use the text form for that).
"""

from __future__ import annotations

import re

import sympy

from ..ir.expr import Apply, Const, Expr, Var, is_op, postorder
from . import precedence as P
from .einsum_forms import index_notation
from .forms import Forms, call
from ..hooks import provided
from .text import (FORMS as TEXT_FORMS, TextPrinter, derivation_text, distinct, problem_names,
                   program_text, second_order_text)

SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε",
    "zeta": "ζ", "eta": "η", "theta": "θ", "iota": "ι", "kappa": "κ",
    "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ",
    "sigma": "σ", "tau": "τ", "upsilon": "υ", "phi": "φ", "chi": "χ",
    "psi": "ψ", "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ",
    "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π", "Sigma": "Σ", "Upsilon": "Υ",
    "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}

# The Unicode forms: the text form unless listed here; these are functions
# written under another name (arguments and keywords as in text).
FORMS = Forms(TEXT_FORMS.__getitem__, {
    "sigmoid": call("σ"), "trace": call("tr"), "logdet": call("log det"),
    "maximum": call("max"), "minimum": call("min"),
})
RELATIONS = {"<=": "≤", ">=": "≥", "==": "=", "!=": "≠"}

INDICATOR = "𝟙"


def superscript(text: str) -> str | None:
    """An integer in superscript digits ('-3' -> '⁻³'), else None."""
    return text.translate(SUPERSCRIPT) if re.fullmatch(r"-?\d+", text) else None


# Letters Unicode has subscripts for (the indices of a sum).
_SUBSCRIPT_LETTERS = dict(zip("aehijklmnoprstuvx", "ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ"))


def _subscripts(indices: str) -> str:
    """Σ's indices as subscripts where Unicode has them all, else `_{k,l}`."""
    if all(c in _SUBSCRIPT_LETTERS for c in indices):
        return "".join(_SUBSCRIPT_LETTERS[c] for c in indices)
    return "_{" + ",".join(indices) + "}"


def name(text: str) -> str:
    """W1 -> W₁, x_2 -> x₂, alpha -> α, alpha1 -> α₁; other names unchanged."""
    match = re.fullmatch(r"([^\W\d_]+)_?(\d+)", text)
    if match:
        return name(match.group(1)) + match.group(2).translate(SUBSCRIPT)
    return GREEK.get(text, text)


class UnicodePrinter(TextPrinter):
    """The text printer in textbook notation with Unicode symbols."""

    language = "unicode"
    forms = FORMS

    # ------------------------------------------------------------ names
    def _print_Var_name(self, text: str) -> tuple[str, int]:
        return self.symbols.get(text) or name(text), P.ATOM

    def symbol(self, s: sympy.Symbol) -> str:
        return self.symbols.get(s.name) or name(s.name)

    # ------------------------------------------------------------ scalars
    def product(self, factors: list[str]) -> str:
        return "·".join(factors)

    def fraction(self, num: str, den: str) -> str:
        return f"{num}/{den}"

    def power_of(self, base: str, exponent) -> str:
        small = superscript(str(exponent))
        return base + small if small is not None else f"{base}^{exponent}"

    # ------------------------------------------------------------ products
    def product_of(self, factors: list[Expr]) -> str:
        """Scalar factors first, joined by ·, then array factors joined by ⊙."""
        scalars = [self.arg(f, P.MUL + 1) for f in factors if not f.shape]
        arrays = [self.arg(f, P.MUL + 1) for f in factors if f.shape]
        return "·".join(scalars + ([" ⊙ ".join(arrays)] if arrays else []))

    def scaled_body(self, factors):
        if len(factors) == 1 and is_op(factors[0], "sum"):
            return self.arg(factors[0], P.MUL)  # c·∑X = ∑(c·X): no parentheses
        return self.product_of(factors)

    def _print_matmul(self, node: Apply) -> tuple[str, int]:
        a, b = node.args
        left = self.arg(a, P.MUL + 1 if self.elementwise_product(a) else P.MUL)
        return f"{left}·{self.arg(b, P.MUL + 1)}", P.MUL

    def _print_div(self, node: Apply) -> tuple[str, int]:
        if (quotient := self.rational_quotient(node)) is not None:
            return quotient
        a, b = node.args
        left = self.arg(a, P.MUL + 1 if is_op(a, "matmul") else P.MUL)
        return f"{left} / {self.arg(b, P.MUL + 1)}", P.MUL

    def _print_contract(self, node: Apply) -> tuple[str, int]:
        """Index notation, as LaTeX: Σₖ X[i,j,k] W[k,l]."""
        def entry(x):
            text = self.arg(x, P.POSTFIX)
            return lambda indices: f"{text}[{','.join(indices)}]"
        return index_notation(node.param("spec"), [entry(a) for a in node.args],
                              lambda s: "Σ" + _subscripts(s)), P.MUL

    def _print_kron(self, node: Apply) -> tuple[str, int]:
        a, b = node.args
        return f"{self.arg(a, P.MUL + 1)} ⊗ {self.arg(b, P.MUL + 1)}", P.MUL

    def _print_outer(self, node: Apply) -> tuple[str, int]:
        x, y = node.args
        return f"{self.arg(x, P.MUL)}·{self.arg(y, P.ATOM)}ᵀ", P.MUL

    def _print_solve(self, node: Apply) -> tuple[str, int]:
        a, b = node.args
        return f"{self.arg(a, P.ATOM)}⁻¹·{self.arg(b, P.MUL + 1)}", P.MUL

    # ------------------------------------------------------------ postfix
    def _print_pow(self, node: Apply) -> tuple[str, int]:
        base, exponent = node.args
        small = None
        if isinstance(exponent, Const) and exponent.value.is_Integer:
            small = superscript(str(int(exponent.value)))
        if small is not None:
            return self.arg(base, P.ATOM) + small, P.POW
        return f"{self.arg(base, P.ATOM)}^{self.arg(exponent, P.ATOM)}", P.POW

    def _print_compare(self, node: Apply) -> tuple[str, int]:
        """a ≤ b, a ≠ b: the relation's symbol."""
        op = node.param("op")
        return (f"{self.arg(node.args[0], P.ADD)} {RELATIONS.get(op, op)} "
                f"{self.arg(node.args[1], P.ADD)}"), P.COMPARE

    def _print_square(self, node: Apply) -> tuple[str, int]:
        return self.arg(node.args[0], P.ATOM) + "²", P.POW

    def _print_transpose(self, node: Apply) -> tuple[str, int]:
        inner = node.args[0]
        if is_op(inner, "inv"):
            return self.arg(inner.args[0], P.ATOM) + "⁻ᵀ", P.POSTFIX
        return self.arg(inner, P.ATOM) + "ᵀ", P.POSTFIX

    def _print_inv(self, node: Apply) -> tuple[str, int]:
        return self.arg(node.args[0], P.ATOM) + "⁻¹", P.POSTFIX

    def _print_expand_dims(self, node: Apply) -> tuple[str, int]:
        """Axes of size 1 put back are broadcasting, unwritten (as a column is)."""
        return self.print(node.args[0])

    def _print_col(self, node: Apply) -> tuple[str, int]:
        return self.print(node.args[0])

    def _print_row(self, node: Apply) -> tuple[str, int]:
        return self.arg(node.args[0], P.ATOM) + "ᵀ", P.POSTFIX

    # ------------------------------------------------------------ prefix
    def _print_sum(self, node: Apply) -> tuple[str, int]:
        axis = node.param("axis")
        axes = ",".join(map(str, axis)) if isinstance(axis, tuple) else str(axis)
        sign = "∑" if axis is None else "∑" + axes.translate(SUBSCRIPT)
        return sign + self.arg(node.args[0], P.POW), P.MUL

    def _print_sqrt(self, node: Apply) -> tuple[str, int]:
        return "√" + self.arg(node.args[0], P.ATOM), P.POW

    # ------------------------------------------------------------ brackets
    def _print_step(self, node: Apply) -> tuple[str, int]:
        return f"{INDICATOR}[{self.doprint(node.args[0])} > 0]", P.ATOM

    def _print_abs(self, node: Apply) -> tuple[str, int]:
        return f"|{self.doprint(node.args[0])}|", P.ATOM

    def _print_norm(self, node: Apply) -> tuple[str, int]:
        return f"‖{self.doprint(node.args[0])}‖", P.ATOM

    def _print_norm1(self, node: Apply) -> tuple[str, int]:
        return f"‖{self.doprint(node.args[0])}‖₁", P.ATOM

    def _print_eye(self, node: Apply) -> tuple[str, int]:
        return "I", P.ATOM


def _names_in(node: Expr) -> list[str]:
    """The variable, intermediate and dimension names an expression mentions."""
    out: dict[str, None] = {}
    for n in postorder([node]):
        if isinstance(n, Var):
            out[n.name] = None
        elif isinstance(n, Const):
            out.update((s.name, None) for s in n.value.free_symbols)
        elif isinstance(n, Apply):
            if n.op == "name":
                out[n.param("name")] = None
            for key, value in n.params:
                if key == "shape":
                    out.update((str(s), None) for d in value
                               for s in sympy.sympify(d).free_symbols)
    return list(out)


def to_unicode(node: Expr, symbols: dict[str, str] | None = None) -> str:
    """An expression in Unicode notation (see the module docstring); names
    that would print alike keep their text spelling."""
    names = distinct({n: name(n) for n in _names_in(node)})
    return UnicodePrinter({**names, **(symbols or {})}).doprint(node)


def program_unicode(program, problem) -> str:
    """The gradients as lines `name = expression` in Unicode notation:

        # gradient of loss = ∑(relu(Z₁)·W₂ + b₂ - T)²/N
        Z₁ = X·W₁ + b₁
        ...
        ∂loss/∂W₁ = Xᵀ·δZ₁
    """
    return program_text(program, problem, UnicodePrinter, name)


def gradient_unicode(gradient) -> str:
    """`program_unicode` of a `Gradient` (what `matcalc grad --format unicode` prints)."""
    return program_unicode(gradient.program, gradient.problem)


def second_order_unicode(result) -> str:
    """Hessians, Hessian-vector products or Jacobians in Unicode notation
    (what `matcalc hessian --format unicode` prints)."""
    return second_order_text(result, UnicodePrinter, name)


def derivation_unicode(derivation) -> str:
    """The derivation step by step in Unicode notation (what `matcalc grad
    --steps --format unicode` prints)."""
    return derivation_text(derivation, UnicodePrinter, name)


def _shape(shape) -> str:
    return " × ".join(name(str(d)) for d in shape) if shape else "scalar"


def problem_unicode(problem) -> str:
    """The problem in Unicode notation: declarations, definitions, wrt."""
    names = distinct({n: name(n) for n in problem_names(problem)})
    printer = UnicodePrinter(names)
    lines = [f"{names[n]}: {_shape(v.shape)}" + "".join(f" {w}" for w in (v.structure, v.domain)
                                                         if w)
             for n, v in problem.variables.items()]
    definitions = [*problem.intermediates, problem.output_name]
    for n in dict.fromkeys(definitions):
        node = provided("written_expr")(problem, n)
        node = node if node is not None else problem.scope().get(n, problem.output)
        lines.append(f"{names[n]} = {printer.define(node)}")
    lines.append("wrt " + ", ".join(names[w] for w in problem.wrt))
    return "\n".join(lines)
