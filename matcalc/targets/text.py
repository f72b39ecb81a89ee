"""The input language as output: `parse(to_text(e))` rebuilds `e`."""

from __future__ import annotations

import sympy

from ..ir.expr import Apply, Const, is_op
from ..hooks import provide, provided
from ..ir.shapes import fmt
from ..ops.indexing import key_text, size_value
from ..passes.lowering import permuted_product
from . import precedence as P
from .einsum_forms import axes_call, einsum_call
from .forms import PYTHON_SYNTAX, Form, Forms, call, joined, reshaped
from .printer import Printer


def _dims(name: str) -> Form:
    """`ones(N, D)`: an array given by its dimensions."""
    return Form(lambda a, p: f"{name}({', '.join(map(str, p['shape']))})")


# The text forms: `name(x, key=value)` unless listed here.
FORMS = Forms(call, {
    **PYTHON_SYNTAX,
    "zeros": _dims("zeros"),
    "ones": _dims("ones"),
    "eye": Form(lambda a, p: f"eye({p['shape'][0]})"),
    "diagm": call("diag"),
    "eye_rect": _dims("eye"),
    "triu": Form(lambda a, p: f"triu({a[0]}" + (f", k={p['k']})" if p.get("k") else ")")),
    "tril": Form(lambda a, p: f"tril({a[0]}" + (f", k={p['k']})" if p.get("k") else ")")),
    "contract": einsum_call("einsum"),
    "permute": axes_call("transpose"),
    "matrix_transpose": Form("swapaxes({0}, -1, -2)"),
    "reshape": reshaped("reshape"),
    "concatenate": joined("concatenate"),
    # the adjoints of indexing and gather, as JAX writes them
    "unindex": Form(lambda a, p: f"zeros({', '.join(p['shape'])}).at[{key_text(p['key'])}]"
                    f".set({a[0]})", P.POSTFIX),
    "scatter_add": Form(lambda a, p: f"zeros({', '.join(p['shape'])}).at[{a[1]}].add({a[0]})",
                        P.POSTFIX),
})


# The reductions the language writes with keepdims=True.
KEEPDIMS = ("sum", "max", "min", "logsumexp")


class TextPrinter(Printer):
    language = "text"
    forms = FORMS
    swaps_operands = False

    def constant(self, value) -> str:
        """The constant e is `e` (SymPy writes E)."""
        return "e" if value == sympy.E else super().constant(value)

    def unmatched_contract(self, node: Apply) -> tuple[str, int]:
        """An einsum that is a product of stacks of matrices between
        permutations written so, as the language reads it (`transpose(A @ V,
        (0, 2, 1, 3))`, the lowering's `permuted_product`), else `einsum(...)`."""
        product = permuted_product(node, node.args)
        return self._print_form(node) if product is None else self.print(product)

    def _print_expand_dims(self, node: Apply) -> tuple[str, int]:
        """A reduction with every reduced axis put back is the reduction
        with keepdims=True, `max(X, axis=(1, 2), keepdims=True)`."""
        inner = node.args[0]
        if is_op(inner, *KEEPDIMS):
            axis = inner.param("axis")
            axes = tuple(range(inner.args[0].ndim)) if axis is None else axis
            if node.param("axis") == axes:
                form = call(inner.op)
                params = {**dict(inner.params), "keepdims": True}
                return form.render([self.arg(inner.args[0], form.arg_precedence(0))],
                                   params), form.prec
        return self._print_form(node)

    def _print_div(self, node: Apply) -> tuple[str, int]:
        """a / b; a rational numerator's denominator joins b's: (1/2) / f
        is 1 / (2 * f)."""
        return self.rational_quotient(node) or self._print_form(node)

    def rational_quotient(self, node: Apply) -> tuple[str, int] | None:
        """(p/q) / b as p / (q * b), or None for another numerator."""
        a, b = node.args
        if not (isinstance(a, Const) and a.value.is_Rational and a.value.q != 1):
            return None
        p, q = sympy.fraction(a.value)
        bottom = self.product([self.number(q), self.arg(b, P.MUL + 1)])
        return self.fraction(self.number(p), self.parenthesize(bottom)), P.MUL


def to_text(node, symbols=None) -> str:
    """An expression in matcalc's own language."""
    return TextPrinter(symbols).doprint(node)


def scalar_text(value) -> str:
    """A SymPy scalar (a number or an expression in dimensions) as text."""
    return TextPrinter().scalar(value)


def declarations(problem) -> list[str]:
    names = {size: name for name, size in _sizes(problem).items()}
    return [f"{name}: {fmt(tuple(names.get(d, d) for d in v.shape))}"
            + "".join(f" {w}" for w in (v.structure, v.domain) if w)
            for name, v in problem.variables.items()]


def _sizes(problem) -> dict:
    """The intermediates that name a product of dimensions (D = H * E), by
    name: declarations write the name."""
    out = {}
    for name, node in problem.intermediates.items():
        size = size_value(node)
        if size is not None and size.free_symbols and size.is_integer and size.is_positive:
            out[name] = size
    return out


def problem_text(problem) -> str:
    """The problem as a program in the input language (the sizes it names,
    D = H * E, before the declarations that use them)."""
    printer = TextPrinter()
    declared = {d for v in problem.variables.values() for d in v.shape}
    sizes = [n for n in problem.intermediates if size_value(problem.intermediates[n])
             is not None] if declared & set(_sizes(problem).values()) else []
    lines = [f"{name} = {printer.define(problem.intermediates[name])}" for name in sizes]
    lines += declarations(problem)
    for name, node in problem.intermediates.items():
        if name in sizes:
            continue
        lines.append(f"{name} = {printer.define(node)}")
    lines.append("wrt " + ", ".join(problem.wrt))
    if problem.output_name not in problem.intermediates:
        lines.append(printer.doprint(problem.output))  # a bare expression comes last
    return "\n".join(lines)


def distinct(shown: dict[str, str]) -> dict[str, str]:
    """`shown` (name -> how it prints) with every name that would print like
    another kept as it is (W1 and W_1 both W₁; a variable named δt1)."""
    shown = dict(shown)
    while True:
        seen: dict[str, set[str]] = {}
        for raw, text in shown.items():
            seen.setdefault(text, set()).add(raw)
        clash = {raw for group in seen.values() if len(group) > 1 for raw in group
                 if shown[raw] != raw}
        if not clash:
            return shown
        for raw in clash:
            shown[raw] = raw


def problem_names(problem) -> list[str]:
    return [*problem.variables, *problem.dims, *problem.intermediates, problem.output_name]


def result_names(program, problem, label=lambda name: name) -> dict[str, str]:
    """How printed math names a program's results, one notation for every
    output: δv is the adjoint ∂f/∂v of an intermediate v, ∂f/∂W the gradient
    by W (L for an array-valued S, whose δS = ∂L/∂S is given); every other
    name as `label` writes it. The generated code keeps `dv` and `dW`."""
    shown = distinct({n: label(n) for n in [*problem_names(problem),
                                            *(b.name for b in program.bindings)]})
    top = "L" if program.seed is not None else shown[program.value]
    for b in program.bindings:
        if b.role == "adjoint" and b.of:
            shown[b.name] = "δ" + shown.get(b.of, label(b.of))
        elif b.role == "gradient":
            shown[b.name] = f"∂{top}/∂{shown.get(b.of, label(b.of))}"
    if program.seed is not None:
        shown[program.seed.name] = "δ" + shown[program.value]
    return distinct(shown)


def function_text(problem, printer) -> str:
    """`f = ...`, the function as its user wrote it (the built form where
    the problem has no text): `mean` stays mean, `x @ S @ x` keeps its order."""
    name = problem.output_name
    if printer.language == "text" and name in problem.written:
        return f"{name} = {problem.written[name]}"
    written = provided("written_expr")(problem, name)
    body = printer.define(written if written is not None else problem.output)
    return f"{printer.symbols.get(name, name)} = {body}"


def program_text(program, problem, printer_class=None, label=lambda name: name) -> str:
    """The gradients as lines `name = expression` (`δt1 = ...` an adjoint,
    `∂f/∂W = ...` a gradient), the expressions in the input language, or in
    another notation given its printer class and how it writes names."""
    names = result_names(program, problem, label)
    printer = (printer_class or TextPrinter)(names)
    head = "# gradient of " + function_text(problem, printer)
    if program.seed is not None:
        head += f", given {names[program.seed.name]} = ∂L/∂{names[program.value]}"
    lines = [head]
    for b in program.needed(name for _, name in program.gradients):
        lines.append(f"{names.get(b.name, b.name)} = {printer.doprint(b.expr)}")
    return "\n".join(lines)


def step_symbols(names, label=lambda name: name, taken=()) -> dict[str, str]:
    """How the derivation writes differentials (dX) and adjoints (δX); d(X)
    and δ(X) where dX or δX is a name of the problem (a variable dx)."""
    taken = set(taken)
    return {f"{mark} {n}": (f"{mark}{label(n)}" if f"{mark}{label(n)}" not in taken
                            else f"{mark}({label(n)})")
            for mark in ("d", "δ") for n in names}


def derivation_text(derivation, printer_class=None, label=lambda name: name) -> str:
    """The steps as text: differentials, shares of dL, identification; in
    another notation given its printer class and how it writes names."""
    printer_class = printer_class or TextPrinter
    problem, program = derivation.gradient.problem, derivation.gradient.program
    names = [*problem.variables, *(b.name for b in program.bindings)]
    plain = distinct({n: label(n) for n in [*names, *problem_names(problem)]})
    shown = {plain[n] for n in [*problem_names(problem), *(b.name for b in program.forward())]}
    printer = printer_class({**plain, **step_symbols(names, lambda n: plain.get(n, label(n)),
                                                     shown)})
    headings = {"differential": "forward: the differential of each intermediate",
                "share": "reverse: each intermediate's part of dL, moved onto its inputs "
                         "(<A, B> = sum(A * B))",
                "gradient": "identification: dL = Σ <∂L/∂X, dX>"}
    head = "# derivation of the gradients of " + function_text(problem, printer_class(plain))
    if program.seed is not None:
        head += f", given {printer.symbols[f'δ {program.value}']} = ∂L/∂{plain[program.value]}"
    lines = [head]
    forward = program.forward()
    if forward:
        lines.append("intermediates:")
        lines += [f"  {plain[b.name]} = {printer.doprint(b.expr)}" for b in forward]
    kind = None
    for step in derivation.steps:
        if step.kind in headings and step.kind != kind:
            lines.append(headings[step.kind] + ":")
        kind = step.kind if step.kind != "adjoint" else kind
        lines.append("  " + _step_line(step, printer, program, plain))
    return "\n".join(lines)


def _step_line(step, printer, program, plain) -> str:
    """One line of the derivation, with its rules in brackets."""
    why = f"    [{'; '.join(step.rules)}]" if step.rules and step.kind != "adjoint" else ""
    if step.kind in ("differential", "adjoint"):
        return f"{printer.doprint(step.lhs)} = {printer.doprint(step.rhs)}{why}"
    if step.kind == "share":
        right = " + ".join(f"<{printer.doprint(g)}, {printer.doprint(d)}>"
                           for g, d in step.terms)
        left = (printer.doprint(step.rhs) if isinstance(step.lhs, Const)
                else f"<{printer.doprint(step.lhs)}, {printer.doprint(step.rhs)}>")
        return f"{left} = {right}{why}"
    top = "L" if program.seed is not None else plain[program.value]
    return f"∂{top}/∂{plain[step.lhs.name]} = {printer.doprint(step.rhs)}"


def second_order_text(result, printer_class=None, label=lambda name: name) -> str:
    """Hessians, Hessian-vector products or Jacobians as lines of text; in
    another notation given its printer class and how it writes names."""
    problem, program = result.problem, result.program
    names = result_names(program, problem, label)
    printer = (printer_class or TextPrinter)(names)
    what = {"hessian": "Hessian", "hvp": "Hessian-vector product",
            "jacobian": "Jacobian"}[result.kind]
    lines = [f"# {what} of {function_text(problem, printer)}"]
    for e in result.entries:
        direction = (f", applied to the direction {label(e.direction.name)}"
                     if e.form == "operator" and result.kind != "hvp" else "")
        sep = " = " if result.kind == "hvp" else "" if e.layout.startswith("[") else ": "
        lines.append(f"# {names.get(e.name, label(e.name))}{direction}{sep}{e.layout}")
    if result.kind == "hessian" and len(result.entries) > 1:
        lines.append("# the blocks below the diagonal are those above with their two groups "
                     "of indices swapped")
    for b in program.needed(name for _, name in program.gradients):
        lines.append(f"{names.get(b.name, label(b.name))} = {printer.doprint(b.expr)}")
    return "\n".join(lines)


provide(to_text, scalar_text, problem_text, program_text, derivation_text, second_order_text)
