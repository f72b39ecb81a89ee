"""The printer skeleton: one `_print_<op>` method per node kind, else the
form its target's registry gives the operator, with a precedence table
deciding the parentheses (in the manner of SymPy's printers)."""

from __future__ import annotations

import sympy

from ..ir.expr import Apply, Const, Expr, Var, is_op, postorder
from ..ops.einsum_matrix import matmul_operands
from ..ops.einsum_spec import split_spec
from ..passes.updates import updated
from . import precedence as P
from .forms import Form, Forms


class Printer:
    """Prints expressions; a subclass names its `language` and sets `forms`,
    its target's forms registry."""

    language: str
    forms: Forms
    swaps_operands = True  # b @ a for an einsum of (a, b); text keeps the order (it reads back)

    def __init__(self, symbols: dict[str, str] | None = None):
        self.symbols = symbols or {}
        self._memo: dict[Expr, tuple[str, int]] = {}

    def doprint(self, node: Expr) -> str:
        return self.print(node)[0]

    def define(self, node: Expr) -> str:
        """The expression a named intermediate stands for."""
        if is_op(node, "name"):
            node = node.args[0]
        return self.print(node)[0]

    def print(self, node: Expr) -> tuple[str, int]:
        """The node printed, with its precedence (children printed first,
        without recursion, so deep expressions print too)."""
        for n in postorder([node], self._memo):
            self._memo[n] = self._dispatch(n)
        return self._memo[node]

    def _dispatch(self, node: Expr) -> tuple[str, int]:
        if isinstance(node, Var):
            return self._print_Var(node)
        if isinstance(node, Const):
            return self._print_scalar(node.value)
        method = getattr(self, f"_print_{node.op}", None)
        return method(node) if method else self._print_form(node)

    def arg(self, node: Expr, prec: int) -> str:
        """A child printed, parenthesised when it binds looser than `prec`."""
        text, own = self._memo[node] if node in self._memo else self.print(node)
        return self.parenthesize(text) if own < prec else text

    def parenthesize(self, text: str) -> str:
        return f"({text})"

    def form(self, node: Apply) -> Form:
        """How this target writes the node's operator: its registry's entry,
        else the target's default for the operator's name."""
        return self.forms[node.op]

    def _print_form(self, node: Apply) -> tuple[str, int]:
        form = self.form(node)
        args = [self.arg(a, form.arg_precedence(i)) for i, a in enumerate(node.args)]
        params = dict(node.params)
        if "shape" in params:
            params["shape"] = tuple(self.dim(d) for d in params["shape"])
        return form.render(args, params), form.prec

    def _print_adjoint(self, node: Apply) -> tuple[str, int]:
        return self.print(node.args[0])

    def _print_name(self, node: Apply) -> tuple[str, int]:
        return self._print_Var_name(node.param("name"))

    def _print_Var(self, node: Var) -> tuple[str, int]:
        return self._print_Var_name(node.name)

    def _print_Var_name(self, name: str) -> tuple[str, int]:
        return self.symbols.get(name, name), P.ATOM

    def dim(self, d) -> str:
        return self.scalar(sympy.sympify(d))

    # ------------------------------------------------ scalars (SymPy values)
    def symbol(self, s: sympy.Symbol) -> str:
        return self.symbols.get(s.name, s.name)

    def number(self, value: sympy.Expr) -> str:
        if value.is_Integer:
            return str(int(value))
        return repr(float(value))

    def product(self, factors: list[str]) -> str:
        return " * ".join(factors)

    def fraction(self, num: str, den: str) -> str:
        return f"{num} / {den}"

    def _factors(self, value: sympy.Expr) -> tuple[list[str], bool]:
        """Printed factors of a positive-or-negative monomial; and its sign."""
        coeff, rest = value.as_coeff_Mul()
        negative = coeff < 0
        coeff = -coeff if negative else coeff
        out = [] if coeff == 1 else [self.number(coeff)]
        for factor in sympy.Mul.make_args(rest):
            if factor == 1:
                continue
            if factor.is_Pow:
                base, exp = factor.as_base_exp()
                out.append(self.power_of(self.arg_scalar(base, P.POW + 1),
                                         self.arg_scalar(exp, P.POW)))
            elif factor.is_Symbol:
                out.append(self.symbol(factor))
            elif factor.is_Add:
                out.append(self.arg_scalar(factor, P.MUL + 1))
            else:
                out.append(self.constant(factor))
        return out, negative

    def constant(self, value: sympy.Expr) -> str:
        """A factor SymPy keeps exact and unexpanded (log(2), pi), as SymPy
        writes it."""
        return self.parenthesize(str(value)) if value.is_Mul else str(value)

    def power_of(self, base: str, exponent) -> str:
        return f"{base} ** {exponent}"

    def scalar(self, value: sympy.Expr) -> str:
        return self._print_scalar(value)[0]

    def _print_scalar(self, value: sympy.Expr) -> tuple[str, int]:
        """A SymPy scalar: a number or a monomial fraction in dimensions."""
        value = sympy.sympify(value)
        if value.is_Add:
            out = ""
            for k, term in enumerate(sympy.Add.make_args(value)):
                text, _ = self._print_scalar(term)
                if k:
                    out += f" - {text[1:]}" if text.startswith("-") else f" + {text}"
                else:
                    out = text
            return out, P.ADD
        if value.is_Number and not value.is_Rational:
            text = self.number(value)
            return text, (P.NEG if text.startswith("-") else P.ATOM)
        num, den = sympy.fraction(value)
        top, negative = self._factors(num)
        bottom, _ = self._factors(den)
        sign = "-" if negative else ""
        if not top:
            top = ["1"]
        if not bottom:
            if len(top) == 1:
                return sign + top[0], (P.NEG if sign else P.ATOM)
            return sign + self.product(top), P.MUL
        numerator = self.product(top)
        denominator = bottom[0] if len(bottom) == 1 else self.parenthesize(self.product(bottom))
        return sign + self.fraction(numerator, denominator), P.MUL

    # ---------------------------------------------------------- n-ary ops
    @staticmethod
    def parts(node: Expr) -> tuple[sympy.Expr, list[Expr]]:
        """A product as (scalar coefficient, other factors)."""
        if isinstance(node, Const):
            return node.value, []
        if is_op(node, "mul"):
            if isinstance(node.args[0], Const):
                return node.args[0].value, list(node.args[1:])
            return sympy.Integer(1), list(node.args)
        return sympy.Integer(1), [node]

    @staticmethod
    def is_negative(value: sympy.Expr) -> bool:
        return value.as_coeff_Mul()[0] < 0

    def _print_add(self, node: Apply) -> tuple[str, int]:
        out = []
        for k, term in enumerate(_written_order(node.args)):
            coeff, factors = self.parts(term)
            negative = self.is_negative(coeff)
            text = self.term(term, node, *self.scaled(-coeff if negative else coeff,
                                                      factors, node))
            if k == 0:  # -(a / b): unary minus binds tighter than / in Python
                prec = self.scaled(-coeff if negative else coeff, factors, node)[1]
                out.append(("-" + (self.parenthesize(text) if prec < P.NEG else text))
                           if negative else text)
            else:
                out.append((" - " if negative else " + ") + text)
        return "".join(out), P.ADD

    def term(self, term: Expr, parent: Apply, text: str, prec: int) -> str:
        """A printed term of the sum `parent` (a hook for notation)."""
        return text

    def _print_mul(self, node: Apply) -> tuple[str, int]:
        coeff, factors = self.parts(node)
        return self.scaled(coeff, factors, node)

    def scaled(self, coeff: sympy.Expr, factors: list[Expr], parent: Apply) -> tuple[str, int]:
        """`coeff` times the product of `factors` (a term of `parent`)."""
        if not factors:
            return self._print_scalar(coeff)
        if len(factors) == 1 and coeff == 1:  # a term of a sum: (b - a) after a minus
            return (self.arg(factors[0], P.ADD + 1), self.print(factors[0])[1]) \
                if parent.op == "add" else (self.arg(factors[0], P.MUL + 1), P.MUL)
        body = self.scaled_body(factors)
        if coeff == 1:
            return body, P.MUL
        if coeff == -1:
            return "-" + body, (P.NEG if len(factors) == 1 else P.MUL)
        num, den = sympy.fraction(coeff)
        if den != 1 and num in (1, -1):
            denominator = self.arg_scalar(den)
            if (quotient := scalar_quotient(factors)) is not None:
                a, b = quotient  # (a / b) / 2 is a / (2 b)
                body = self.arg(a, P.MUL + 1 if is_op(a, "matmul") else P.MUL)
                denominator = self.parenthesize(self.product(
                    [self.arg_scalar(den, P.MUL), self.arg(b, P.MUL + 1)]))
            return ("-" if num == -1 else "") + self.fraction(body, denominator), P.MUL
        return self.product([self.arg_scalar(coeff, P.MUL), body]), P.MUL

    def _print_matmul(self, node: Apply) -> tuple[str, int]:
        return self.matrix_product(*node.args)

    def matrix_product(self, a: Expr, b: Expr, flips=(False, False)) -> tuple[str, int]:
        """a @ b in the target's form of `matmul`, an operand transposed where
        `flips` says. `A @ B @ C` reads left to right; an elementwise product
        on the left is parenthesised, `(A * B) @ C`."""
        form = self.forms["matmul"]
        texts = []
        for k, (x, flip) in enumerate(zip((a, b), flips)):
            least = form.arg_precedence(k)
            if k == 0 and self.elementwise_product(x):
                least = max(least, P.MUL + 1)
            text, own = self.swapped(x) if flip else self.print(x)
            texts.append(self.parenthesize(text) if own < least else text)
        return form.render(texts, {}), form.prec

    def _print_contract(self, node: Apply) -> tuple[str, int]:
        """An einsum: `A @ B` where it is NumPy's product of stacks of
        matrices (of the operands in either order, where the printer
        `swaps_operands`), else `unmatched_contract`. How code computes an
        einsum (tensordot, a permuted `@`, an order) is the lowering's."""
        terms, out = split_spec(node.param("spec"))
        shapes = [a.shape for a in node.args]
        a, b = node.args if len(node.args) == 2 else (None, None)
        flips = matmul_operands(terms, out, shapes)
        if flips is None and len(terms) == 2 and self.swaps_operands:
            flips = matmul_operands(terms[::-1], out, shapes[::-1])
            a, b = b, a
        if flips is None:
            return self.unmatched_contract(node)
        return self.matrix_product(a, b, flips)

    def unmatched_contract(self, node: Apply) -> tuple[str, int]:
        """An einsum that is no `a @ b`: the target's form of `contract`."""
        return self._print_form(node)

    def _print_update(self, node: Apply) -> tuple[str, int]:
        """A lowered `update`, A @ B + c, where it is no statement of its own
        (a target's `assignment` writes `t = A @ B`, then `t += c`)."""
        return self.print(updated(node))

    def _print_matrix_transpose(self, node: Apply) -> tuple[str, int]:
        """A lowered `matrix_transpose` (last two axes swapped), as `swapped`."""
        return self.swapped(node.args[0])

    def swapped(self, x: Expr) -> tuple[str, int]:
        """x with its last two axes exchanged: `X.T` of a matrix, else the
        target's `matrix_transpose` form."""
        form = self.forms["transpose" if x.ndim == 2 else "matrix_transpose"]
        return form.render([self.arg(x, P.POSTFIX)], {}), form.prec

    @staticmethod
    def elementwise_product(node: Expr) -> bool:
        return is_op(node, "mul", "div")

    def product_of(self, factors: list[Expr]) -> str:
        return self.product([self.arg(f, P.MUL + 1) for f in factors])

    def scaled_body(self, factors: list[Expr]) -> str:
        """The factors a scalar coefficient multiplies (a hook for notation)."""
        return self.product_of(factors)

    def arg_scalar(self, value: sympy.Expr, prec: int = P.MUL + 1) -> str:
        text, own = self._print_scalar(value)
        return self.parenthesize(text) if own < prec else text


def scalar_quotient(factors: list[Expr]) -> tuple[Expr, Expr] | None:
    """(a, b) where the factors are one quotient a / b by a scalar b (which
    a coefficient 1 / k joins: a / (k b))."""
    if len(factors) == 1 and is_op(factors[0], "div") and not factors[0].args[1].shape:
        return factors[0].args
    return None


def _written_order(terms: tuple) -> tuple:
    """A sum's terms as written: a negative constant after the terms, where
    another term leads with a plus (x - 1, not -1 + x)."""
    first = terms[0]
    if len(terms) > 1 and isinstance(first, Const) and first.value.could_extract_minus_sign() \
            and not _leads_negative(terms[1]):
        return terms[1:] + (first,)
    return terms


def _leads_negative(term: Expr) -> bool:
    c = term.args[0].value if is_op(term, "mul") and isinstance(term.args[0], Const) else 1
    return bool(getattr(c, "is_number", False) and c.is_negative)

