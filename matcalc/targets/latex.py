"""LaTeX in textbook notation, for KaTeX and MathJax as is.

Matrix products are juxtaposed (X W), elementwise products are ⊙, transposes
are ^\\top, a bias broadcast over rows is 1 bᵀ, column sums are 1ᵀ X, and
adjoints print as δ with the name of what they belong to.
"""

from __future__ import annotations

import re

import sympy

from ..ir.expr import Apply, Const, Expr, const, is_op
from ..hooks import provide, provided
from ..ops.indexing import key_text
from . import precedence as P
from .einsum_forms import index_notation
from .forms import Form, Forms, latex_call
from .printer import Printer, scalar_quotient

GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
         "iota", "kappa", "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau",
         "upsilon", "phi", "chi", "psi", "omega", "Gamma", "Delta", "Theta",
         "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}


def _escape(text: str) -> str:
    return text.replace("_", r"\_")


def symbol(name: str) -> str:
    """W1 -> W_{1}, x_hat -> x_{hat}, alpha -> \\alpha, loss -> \\mathrm{loss}."""
    match = re.fullmatch(r"([^\W\d_]+)_?(\d+)", name)
    if match:
        return f"{symbol(match.group(1))}_{{{match.group(2)}}}"
    if "_" in name.strip("_"):
        base, sub = (symbol(part) for part in name.strip("_").split("_", 1))
        base = f"{{{base}}}" if "_" in base else base  # b1_2: {b_{1}}_{2}, no double subscript
        return f"{base}_{{{sub}}}"
    if name in GREEK:
        return "\\" + name
    if len(name) == 1 and name.isascii():
        return name
    return rf"\mathrm{{{_escape(name)}}}"


# Functions LaTeX has a command for (\sin); any other is \operatorname{name}.
COMMANDS = {"arccos", "arcsin", "arctan", "arg", "cos", "cosh", "cot", "coth", "csc", "det",
            "exp", "lg", "ln", "log", "max", "min", "sec", "sin", "sinh", "tan", "tanh"}


def default(name: str) -> Form:
    r"""`\name\left(x\right)` for a LaTeX command, else
    `\operatorname{name}_{param}\left(x\right)` (softmax along an axis)."""
    command = "\\" + name if name in COMMANDS else rf"\operatorname{{{_escape(name)}}}"

    def write(a, p):
        given = [_axes(v) for v in p.values() if v is not None]
        sub = f"_{{{', '.join(given)}}}" if given else ""
        return rf"{command}{sub}\left({', '.join(a)}\right)"
    return Form(write)


def _axes(value) -> str:
    """A parameter as a subscript: the axes of a tuple listed, (1, 2) as 1, 2."""
    return ", ".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def _sum(a, p):
    """1ᵀX for column sums, X1 for row sums, sum(X) for the total."""
    axis = p.get("axis")
    if axis == 0:
        return rf"\mathbf{{1}}^\top {a[0]}"
    if axis == 1:
        return rf"{a[0]} \mathbf{{1}}"
    return rf"\operatorname{{sum}}\left({a[0]}\right)"


_RELATIONS = {"<": "<", "<=": r"\leq", ">": ">", ">=": r"\geq", "==": "=", "!=": r"\neq"}


def _triangle(name: str, a, p) -> str:
    r"""`\operatorname{triu}(X)`, with the diagonal offset as a subscript where not 0."""
    sub = f"_{{{p['k']}}}" if p.get("k") else ""  # written triu(X) has no k
    return rf"\operatorname{{{name}}}{sub}\left({a[0]}\right)"


def _dims(symbol: str) -> Form:
    r"""`\mathbf{1}_{N \times D}`: a constant array by its dimensions."""
    times = r" \times "
    return Form(lambda a, p: rf"{symbol}_{{{times.join(str(d) for d in p['shape'])}}}")


def _times(shape) -> str:
    r"""`B \times T \times D`: a printed shape."""
    return r" \times ".join(shape)


# The LaTeX forms: `default(name)` unless listed here.
FORMS = Forms(default, {
    "add": Form(" + ", P.ADD),
    "mul": Form(r" \odot ", P.MUL),
    "div": Form(r"\frac{{{0}}}{{{1}}}"),
    "pow": Form("{0}^{{{1}}}", P.POW, (P.ATOM, P.LOWEST)),
    "matmul": Form("{0} {1}", P.MUL, (P.MUL, P.MUL + 1)),
    "transpose": Form(r"{0}^\top", P.POSTFIX, P.ATOM),
    "name": Form(lambda a, p: p["name"]),
    "adjoint": Form("{0}", P.LOWEST),
    "col": Form("{0}", P.MUL, P.MUL),
    "expand_dims": Form("{0}", P.MUL, P.MUL),
    "row": Form(r"{0}^\top", P.POSTFIX, P.ATOM),
    # indexing as NumPy writes it; its adjoints as JAX does
    "index": Form(lambda a, p: rf"{a[0]}\left[{key_text(p['key'])}\right]", P.POSTFIX,
                  P.POSTFIX),
    "gather": Form(r"{0}\left[{1}\right]", P.POSTFIX, (P.POSTFIX, P.LOWEST)),
    "unindex": Form(lambda a, p: rf"\mathbf{{0}}_{{{_times(p['shape'])}}}.\mathrm{{at}}"
                    rf"\left[{key_text(p['key'])}\right].\mathrm{{set}}\left({a[0]}\right)",
                    P.POSTFIX),
    "scatter_add": Form(lambda a, p: rf"\mathbf{{0}}_{{{_times(p['shape'])}}}.\mathrm{{at}}"
                        rf"\left[{a[1]}\right].\mathrm{{add}}\left({a[0]}\right)", P.POSTFIX),
    "reshape": Form(lambda a, p: rf"\operatorname{{reshape}}_{{{_times(p['shape'])}}}"
                    rf"\left({a[0]}\right)"),
    "sum": Form(_sum, P.MUL, P.MUL + 1),
    "outer": Form(r"{0} {1}^\top", P.MUL, P.POSTFIX),
    "zeros": _dims(r"\mathbf{0}"),
    "ones": _dims(r"\mathbf{1}"),
    "eye": Form(lambda a, p: rf"I_{{{p['shape'][0]}}}"),
    "trace": latex_call(r"\operatorname{tr}"),
    "logdet": latex_call(r"\log\det"),
    "inv": Form("{0}^{{-1}}", P.POSTFIX, P.ATOM),
    "sqrt": Form(r"\sqrt{{{0}}}"),
    "abs": Form(r"\left|{0}\right|"),
    "sigmoid": latex_call(r"\sigma"),
    "step": Form(r"\mathbf{{1}}\left[{0} > 0\right]"),
    "log1p": Form(r"\log\left(1 + {0}\right)"),
    "expm1": Form(r"\left(e^{{{0}}} - 1\right)"),
    "square": Form(r"{0}^{{\circ 2}}", P.POW, P.ATOM),
    "maximum": latex_call(r"\max"),
    "minimum": latex_call(r"\min"),
    "solve": Form("{0}^{{-1}} {1}", P.MUL, (P.ATOM, P.MUL + 1)),
    "diagm": latex_call(r"\operatorname{diag}"),
    "norm": Form(r"\left\|{0}\right\|"),
    "norm1": Form(r"\left\|{0}\right\|_1"),
    "kron": Form(r"{0} \otimes {1}", P.MUL, P.MUL + 1),
    "unkron_left": latex_call(r"\operatorname{unkron}_{L}"),
    "unkron_right": latex_call(r"\operatorname{unkron}_{R}"),
    "log2": latex_call(r"\log_2"),
    "log10": latex_call(r"\log_{10}"),
    "eye_rect": Form(lambda a, p: rf"I_{{{p['shape'][0]} \times {p['shape'][1]}}}"),
    "compare": Form(lambda a, p: f"{a[0]} {_RELATIONS[p['op']]} {a[1]}", P.COMPARE, P.ADD),
    "triu": Form(lambda a, p: _triangle("triu", a, p)),
    "permute": Form(lambda a, p: rf"\operatorname{{transpose}}\left({a[0]}, "
                    rf"{tuple(p['axes'])}\right)"),
    "tril": Form(lambda a, p: _triangle("tril", a, p)),
})


class LatexPrinter(Printer):
    language = "latex"
    forms = FORMS

    def parenthesize(self, text: str) -> str:
        return rf"\left({text}\right)"

    def _print_Var_name(self, name: str) -> tuple[str, int]:
        return self.symbols.get(name) or symbol(name), P.ATOM

    def symbol(self, s: sympy.Symbol) -> str:
        return self.symbols.get(s.name) or symbol(s.name)

    def number(self, value) -> str:
        text = super().number(value)
        if "e" in text:
            mantissa, exponent = text.split("e")
            return rf"{mantissa} \cdot 10^{{{int(exponent)}}}"
        return text

    def product(self, factors: list[str]) -> str:
        return " ".join(factors)

    def constant(self, value) -> str:
        return sympy.latex(value)

    def fraction(self, num: str, den: str) -> str:
        return rf"\frac{{{num}}}{{{den}}}"

    def power_of(self, base: str, exponent) -> str:
        return f"{base}^{{{exponent}}}"

    def _print_scalar(self, value):
        value = sympy.sympify(value)
        num, den = sympy.fraction(value)
        if den != 1:
            top, negative = self._factors(num)
            bottom, _ = self._factors(den)
            return (("-" if negative else "")
                    + self.fraction(self.product(top) or "1", self.product(bottom)), P.MUL)
        return super()._print_scalar(value)

    def scaled(self, coeff, factors, parent):
        if not factors:
            return self._print_scalar(coeff)
        body = self.product_of(factors)
        if coeff == 1:
            if len(factors) == 1 and parent.op == "add":
                return self.print(factors[0])
            return body, P.MUL
        if coeff == -1:
            return "-" + body, P.MUL
        num, den = sympy.fraction(coeff)
        if num in (1, -1) and (quotient := scalar_quotient(factors)) is not None:
            a, b = quotient
            bottom = self.product([self.arg_scalar(den, P.MUL), self.arg(b, P.MUL + 1)])
            return ("-" if num == -1 else "") + self.fraction(self.print(a)[0], bottom), P.MUL
        return f"{self.arg_scalar(coeff, P.MUL)} {body}", P.MUL

    def product_of(self, factors: list[Expr]) -> str:
        """Scalar factors juxtaposed first, then array factors joined by ⊙;
        a column a[:, None] scaling a matrix's rows is diag(a) M."""
        scalars = [self.arg(f, P.MUL + 1) for f in factors if not f.shape]
        arrays = [f for f in factors if f.shape]
        if any(f.ndim == 2 for f in arrays):
            return " ".join(scalars + self._scaled_rows_and_columns(arrays))
        return " ".join(scalars + ([self._hadamard(arrays)] if arrays else []))

    def _hadamard(self, factors: list[Expr]) -> str:
        """Arrays multiplied entrywise: A ⊙ B."""
        return r" \odot ".join(self.arg(f, P.MUL + 1) for f in factors)

    def _scaled_rows_and_columns(self, arrays: list[Expr]) -> list[str]:
        """A matrix product's factors: columns a[:, None] scale the rows,
        diag(a) M; vectors and rows v[None, :] the columns, M diag(v); with
        no other matrix, a vᵀ."""
        cols = [f.args[0] for f in arrays if is_op(f, "col")]
        rows = [f.args[0] if is_op(f, "row") else f for f in arrays
                if f.ndim == 1 or is_op(f, "row")]
        mats = [f for f in arrays if f.ndim == 2 and not is_op(f, "col", "row")]
        if len(arrays) == 1 or not (mats or (cols and rows)) or not (cols or rows):
            return [self._hadamard(arrays)]
        if not mats:
            return [self._joined(cols, P.MUL), rf"{self._joined(rows, P.POSTFIX + 1)}^\top"]
        body = self._hadamard(mats)
        if len(mats) > 1:
            body = self.parenthesize(body)
        return ([self._diag(cols)] if cols else []) + [body] + ([self._diag(rows)] if rows else [])

    def _diag(self, vectors: list[Expr]) -> str:
        """diag of the vectors' entrywise product."""
        inner = self.doprint(vectors[0]) if len(vectors) == 1 else self._hadamard(vectors)
        return rf"\operatorname{{diag}}\left({inner}\right)"

    def _joined(self, vectors: list[Expr], least: int) -> str:
        """Vectors multiplied entrywise, as one operand."""
        if len(vectors) == 1:
            return self.arg(vectors[0], least)
        return self.parenthesize(self._hadamard(vectors))

    def term(self, term: Expr, parent: Apply, text: str, prec: int) -> str:
        """A term broadcast over the rows of a matrix sum is 1 bᵀ (a vector
        b, or a row b[None, :]); one broadcast over its columns, a column
        b[:, None], is b 1ᵀ."""
        if parent.ndim != 2 or term.ndim == 0 or term.shape == parent.shape:
            return text
        if term.ndim == 1:
            return rf"\mathbf{{1}} {text if prec >= P.ATOM else self.parenthesize(text)}^\top"
        if term.shape[1] == 1 and parent.shape[1] != 1:
            return rf"{self.arg_text(text, prec, P.MUL)} \mathbf{{1}}^\top"
        if term.shape[0] == 1 and parent.shape[0] != 1:
            return rf"\mathbf{{1}} {self.arg_text(text, prec, P.MUL + 1)}"
        return text

    def arg_text(self, text: str, prec: int, least: int) -> str:
        return text if prec >= least else self.parenthesize(text)

    def _print_matmul(self, node: Apply):
        """A B; a vector is a column, so x @ A is Aᵀ x, and a vector on the
        left of a product is a row: x @ A @ y is xᵀ A y, x @ y is xᵀ y."""
        a, b = node.args
        if a.ndim == 1 and b.ndim == 2:  # (A B)ᵀ x = Bᵀ Aᵀ x, no brackets round Aᵀ x
            least = P.MUL if is_op(a, "matmul") else P.MUL + 1
            return f"{self._transposed(b)} {self.arg(a, least)}", P.MUL
        if a.ndim == 1:
            return f"{self._row(a)} {self.arg(b, P.MUL + 1)}", P.MUL
        left = self.arg(a, P.MUL + 1 if self.elementwise_product(a) else P.MUL)
        return f"{left} {self.arg(b, P.MUL + 1)}", P.MUL

    def _row(self, x: Expr) -> str:
        """The vector x as a row: xᵀ, and u @ A @ B as uᵀ A B."""
        factors = []
        while is_op(x, "matmul") and x.args[0].ndim == 1:
            factors.append(self.arg(x.args[1], P.MUL + 1))
            x = x.args[0]
        return " ".join([rf"{self.arg(x, P.POSTFIX + 1)}^\top", *reversed(factors)])

    def _transposed(self, m: Expr) -> str:
        """Mᵀ as the left factor of a product: A for M = Aᵀ, A^{-⊤} for A⁻¹."""
        if is_op(m, "transpose"):
            return self.arg(m.args[0], P.MUL + 1 if self.elementwise_product(m.args[0]) else P.MUL)
        if is_op(m, "inv"):
            return rf"{self.arg(m.args[0], P.ATOM)}^{{-\top}}"
        return rf"{self.arg(m, P.ATOM)}^\top"

    def _print_div(self, node: Apply):
        r"""a / b / c as one fraction, \frac{a}{b c}: scalars juxtaposed, then
        arrays joined by ⊙; a constant numerator's denominator joins them:
        1/2 / t is \frac{1}{2 t}."""
        top, bottom = node, []
        while is_op(top, "div"):
            bottom.append(top.args[1])
            top = top.args[0]
        scale = []
        if isinstance(top, Const) and top.value.is_Rational and top.value.q != 1:
            scale, top = [str(top.value.q)], const(top.value.p)
        least = P.MUL + 1 if len(bottom) > 1 or scale else P.LOWEST
        scalars = [self.arg(d, least) for d in bottom[::-1] if not d.shape]
        arrays = [self.arg(d, least) for d in bottom[::-1] if d.shape]
        bottom_text = " ".join(scale + scalars + ([r" \odot ".join(arrays)] if arrays else []))
        return self.fraction(self.doprint(top), bottom_text), P.ATOM

    def _print_pow(self, node: Apply):
        base, exponent = node.args
        base_text = self.arg(base, P.ATOM)
        if is_op(base, "div"):  # (a / b)²: a \frac's exponent reads as the denominator's
            base_text = self.parenthesize(base_text)
        exp_text = self.doprint(exponent)
        if base.shape:
            exp_text = rf"\circ {exp_text}"
        return f"{base_text}^{{{exp_text}}}", P.POW

    def _print_sum(self, node: Apply):
        """sum(X) is atomic; column and row sums are 1ᵀX and X1; a sum over
        the axes of a tuple is sum with the axes as a subscript."""
        x, axis = node.args[0], node.param("axis")
        if axis is None:
            return rf"\operatorname{{sum}}\left({self.doprint(x)}\right)", P.ATOM
        if isinstance(axis, tuple):  # over the axes of an array of 3+ dimensions
            return (rf"\operatorname{{sum}}_{{{_axes(axis)}}}\left({self.doprint(x)}\right)",
                    P.ATOM)
        return self._print_form(node)

    def _print_contract(self, node: Apply):
        r"""Index notation: \sum_{k} X_{ijk} W_{kl}."""
        return index_notation(node.param("spec"), [self._entry(a) for a in node.args],
                              lambda s: rf"\sum_{{{s}}}"), P.MUL

    def _entry(self, x: Expr):
        """The entry of `x` at indices: X_{ijk}, {W_{1}}_{ij}, (A + B)_{ij}."""
        text, prec = self.print(x)
        if prec < P.POSTFIX:
            text = self.parenthesize(text)
        elif "_" in text or "^" in text:
            text = f"{{{text}}}"
        return lambda indices: f"{text}_{{{indices}}}"

    def _print_expand_dims(self, node: Apply):
        """Axes of size 1 put back are broadcasting, unwritten: x itself."""
        return self.print(node.args[0])

    def _print_transpose(self, node: Apply):
        inner = node.args[0]
        if is_op(inner, "inv"):
            return rf"{self.arg(inner.args[0], P.ATOM)}^{{-\top}}", P.POSTFIX
        return rf"{self.arg(inner, P.ATOM)}^\top", P.POSTFIX


def to_latex(node: Expr, symbols=None) -> str:
    """An expression in LaTeX."""
    return LatexPrinter(symbols).doprint(node)


def _symbols(program) -> dict[str, str]:
    """LaTeX names of the program's bindings: δ_{Z_1} for the adjoint dZ1."""
    out = {}
    for b in program.bindings:
        if b.role == "adjoint":
            out[b.name] = rf"\delta_{{{symbol(b.of)}}}"
    if program.seed is not None:
        out[program.seed.name] = rf"\delta_{{{symbol(program.value)}}}"
    return out


def gradient_symbol(program, variable: str) -> str:
    """∂L/∂X, with the function's name for L (or δ_S-weighted for arrays)."""
    top = "L" if program.seed is not None else symbol(program.value)
    return rf"\frac{{\partial {top}}}{{\partial {symbol(variable)}}}"


def program_latex(program, problem) -> str:
    """The gradients as an `aligned` block of equations."""
    printer = LatexPrinter(_symbols(program))
    lines = []
    if program.seed is not None:
        lines.append(rf"&\text{{given }} {printer.doprint(program.seed)} = "
                     rf"\frac{{\partial L}}{{\partial {symbol(program.value)}}}")
    for b in program.needed(name for _, name in program.gradients):
        lhs = (gradient_symbol(program, b.of) if b.role == "gradient"
               else printer.symbols.get(b.name) or symbol(b.name))
        lines.append(rf"{lhs} &= {printer.doprint(b.expr)}")
    return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"


def problem_latex(problem) -> str:
    """The problem's definitions as an `aligned` block, as written."""
    printer = LatexPrinter()
    lines = []
    for name in dict.fromkeys([*problem.intermediates, problem.output_name]):
        node = provided("written_expr")(problem, name)
        node = node if node is not None else problem.scope().get(name, problem.output)
        lines.append(rf"{symbol(name)} &= {printer.define(node)}")
    return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"


_RULE_MATH = {"⊙": r"\odot", "ᵀ": r"^\top", "⁻¹": r"^{-1}", "⁻ᵀ": r"^{-\top}",
              "Σ": r"\Sigma", "∂": r"\partial", "‖": r"\|", "₁": "_1", "−": "-",
              "⟨": r"\langle ", "⟩": r"\rangle", "δ": r"\delta", "σ": r"\sigma",
              "⊗": r"\otimes", "²": "^2", "ₖ": "_k", "⋯": r"\cdots", "≤": r"\le",
              "≥": r"\ge", "≠": r"\ne", "<": "<", ">": ">", "√": r"\surd "}
_INNER = re.compile(r"<([^<>,]*,[^<>]*)>")  # <A, B>, an inner product


def _rule_text(rule: str) -> str:
    """A rule's name for \\text{}: its symbols in inline math."""
    rule = _INNER.sub(r"⟨\1⟩", rule)
    for plain, math in sorted(_RULE_MATH.items(), key=lambda kv: -len(kv[0])):
        rule = rule.replace(plain, f"${math}$")
    return rule.replace("_", r"\_").replace("$\\_1$", "$_1$")


def derivation_latex(derivation) -> str:
    """The steps as an `aligned` block, each line with its rule."""
    problem, program = derivation.gradient.problem, derivation.gradient.program
    names = [*problem.variables, *(b.name for b in program.bindings)]
    symbols = {**{f"d {n}": rf"\mathrm{{d}}{symbol(n)}" for n in names},
               **{f"δ {n}": rf"\delta_{{{symbol(n)}}}" for n in names}}
    printer = LatexPrinter(symbols)
    top = "L" if program.seed is not None else symbol(program.value)

    def inner(a, b) -> str:
        return rf"\left\langle {printer.doprint(a)}, {printer.doprint(b)} \right\rangle"

    lines = [f"{symbol(b.name)} &= {printer.doprint(b.expr)}" for b in program.forward()]
    if program.seed is not None:
        lines.insert(0, rf"&\text{{given }} {symbols[f'δ {program.value}']} = "
                        rf"\frac{{\partial L}}{{\partial {symbol(program.value)}}}")
    for step in derivation.steps:
        why = rf" && \text{{{_rule_text('; '.join(step.rules))}}}" if step.rules else ""
        if step.kind == "differential" or step.kind == "adjoint":
            lhs, rhs = printer.doprint(step.lhs), printer.doprint(step.rhs)
        elif step.kind == "share":
            lhs = (printer.doprint(step.rhs) if isinstance(step.lhs, Const)
                   else inner(step.lhs, step.rhs))
            rhs = " + ".join(inner(g, d) for g, d in step.terms)
        else:
            lhs = rf"\frac{{\partial {top}}}{{\partial {symbol(step.lhs.name)}}}"
            rhs = printer.doprint(step.rhs)
        lines.append(f"{lhs} &= {rhs}{why}")
    return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"


def second_order_latex(result) -> str:
    """Hessians, Hessian-vector products or Jacobians as an `aligned` block."""
    program = result.program
    printer = LatexPrinter()
    top = symbol(program.value)
    labels = {}
    for e in result.entries:
        parts = e.of.split(",")
        if result.kind == "jacobian":
            labels[e.of] = rf"\frac{{\partial {top}}}{{\partial {symbol(e.of)}}}"
        elif result.kind == "hvp":
            labels[e.of] = (rf"\left(\nabla^{{2}} {top} \, v\right)_{{{symbol(e.of)}}}")
        elif len(parts) == 1:
            labels[e.of] = rf"\frac{{\partial^2 {top}}}{{\partial {symbol(e.of)}^2}}"
        else:
            labels[e.of] = (rf"\frac{{\partial^2 {top}}}{{\partial {symbol(parts[0])}"
                            rf" \partial {symbol(parts[1])}}}")
        if e.form == "operator" and result.kind != "hvp":
            labels[e.of] += rf"\left[{symbol(e.direction.name)}\right]"
    lines = []
    for b in program.needed(name for _, name in program.gradients):
        lhs = labels[b.of] if b.role == result.kind else symbol(b.name)
        lines.append(rf"{lhs} &= {printer.doprint(b.expr)}")
    return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"


provide(to_latex, problem_latex, program_latex, derivation_latex, second_order_latex)
