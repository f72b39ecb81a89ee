"""The input language as output: `parse(to_text(e))` rebuilds `e`."""

from __future__ import annotations

import sympy

from ..ir.expr import Const
from ..hooks import provide
from ..ir.shapes import fmt
from .forms import PYTHON_SYNTAX, Form, Forms, call
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
    "triu": Form(lambda a, p: f"triu({a[0]}" + (f", k={p['k']})" if p["k"] else ")")),
    "tril": Form(lambda a, p: f"tril({a[0]}" + (f", k={p['k']})" if p["k"] else ")")),
})


class TextPrinter(Printer):
    language = "text"
    forms = FORMS

    def constant(self, value) -> str:
        """The constant e is `e` (SymPy writes E)."""
        return "e" if value == sympy.E else super().constant(value)


def to_text(node, symbols=None) -> str:
    """An expression in matcalc's own language."""
    return TextPrinter(symbols).doprint(node)


def scalar_text(value) -> str:
    """A SymPy scalar (a number or an expression in dimensions) as text."""
    return TextPrinter().scalar(value)


def declarations(problem) -> list[str]:
    return [f"{name}: {fmt(v.shape)}" + "".join(f" {w}" for w in (v.structure, v.domain) if w)
            for name, v in problem.variables.items()]


def problem_text(problem) -> str:
    """The problem as a program in the input language."""
    printer = TextPrinter()
    lines = declarations(problem)
    for name, node in problem.intermediates.items():
        lines.append(f"{name} = {printer.define(node)}")
    lines.append("wrt " + ", ".join(problem.wrt))
    if problem.output_name not in problem.intermediates:
        lines.append(printer.doprint(problem.output))  # a bare expression comes last
    return "\n".join(lines)


def program_text(program, problem, printer=None, label=lambda name: name) -> str:
    """The gradients as lines `name = expression`: in the input language, or
    in another notation given its printer and how it writes names."""
    printer = printer or TextPrinter()
    value = label(problem.output_name)
    head = f"# gradient of {value} = {printer.define(problem.output)}"
    if program.seed is not None:
        head += f", given {label(program.seed.name)} = ∂L/∂{value}"
    lines = [head]
    for b in program.needed(name for _, name in program.gradients):
        lines.append(f"{label(b.name)} = {printer.doprint(b.expr)}")
    return "\n".join(lines)


def step_symbols(names, label=lambda name: name) -> dict[str, str]:
    """How the derivation writes differentials (dX) and adjoints (δX)."""
    return {**{f"d {n}": f"d{label(n)}" for n in names},
            **{f"δ {n}": f"δ{label(n)}" for n in names}}


def derivation_text(derivation, printer_class=None, label=lambda name: name) -> str:
    """The steps as text: differentials, shares of dL, identification; in
    another notation given its printer class and how it writes names."""
    printer_class = printer_class or TextPrinter
    problem, program = derivation.gradient.problem, derivation.gradient.program
    names = [*problem.variables, *(b.name for b in program.bindings)]
    plain = {n: label(n) for n in [*names, *problem.dims, *problem.intermediates]}
    printer = printer_class({**plain, **step_symbols(names, label)})
    headings = {"differential": "forward: the differential of each intermediate",
                "share": "reverse: each intermediate's part of dL, moved onto its inputs "
                         "(<A, B> = sum(A * B))",
                "gradient": "identification: dL = Σ <∂L/∂X, dX>"}
    lines = [f"# derivation of the gradients of {label(program.value)} = "
             f"{printer_class(plain).define(problem.output)}"]
    forward = program.forward()
    if forward:
        lines.append("intermediates:")
        lines += [f"  {label(b.name)} = {printer.doprint(b.expr)}" for b in forward]
    kind = None
    for step in derivation.steps:
        if step.kind in headings and step.kind != kind and not (
                step.kind == "adjoint" or (kind == "share" and step.kind == "adjoint")):
            lines.append(headings[step.kind] + ":")
        kind = step.kind if step.kind != "adjoint" else kind
        why = f"    [{'; '.join(step.rules)}]" if step.rules else ""
        if step.kind == "differential":
            lines.append(f"  {printer.doprint(step.lhs)} = {printer.doprint(step.rhs)}{why}")
        elif step.kind == "share":
            right = " + ".join(f"<{printer.doprint(g)}, {printer.doprint(d)}>"
                               for g, d in step.terms)
            left = (printer.doprint(step.rhs) if isinstance(step.lhs, Const)
                    else f"<{printer.doprint(step.lhs)}, {printer.doprint(step.rhs)}>")
            lines.append(f"  {left} = {right}{why}")
        elif step.kind == "adjoint":
            lines.append(f"  {printer.doprint(step.lhs)} = {printer.doprint(step.rhs)}")
        else:
            top = "L" if program.seed is not None else label(program.value)
            lines.append(f"  ∂{top}/∂{label(step.lhs.name)} = {printer.doprint(step.rhs)}")
    return "\n".join(lines)


def second_order_text(result, printer=None, label=lambda name: name) -> str:
    """Hessians, Hessian-vector products or Jacobians as lines of text; in
    another notation given its printer and how it writes names."""
    problem, program = result.problem, result.program
    printer = printer or TextPrinter()
    what = {"hessian": "Hessian", "hvp": "Hessian-vector product",
            "jacobian": "Jacobian"}[result.kind]
    lines = [f"# {what} of {label(problem.output_name)} = {printer.define(problem.output)}"]
    for e in result.entries:
        direction = (f", applied to the direction {label(e.direction.name)}"
                     if e.form == "operator" else "")
        sep = "" if e.layout.startswith("[") else ": "
        lines.append(f"# {label(e.name)}{direction}{sep}{e.layout}")
    for b in program.needed(name for _, name in program.gradients):
        lines.append(f"{label(b.name)} = {printer.doprint(b.expr)}")
    return "\n".join(lines)


provide(to_text, scalar_text, problem_text, program_text, derivation_text, second_order_text)
