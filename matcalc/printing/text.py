"""The input language as output: `parse(to_text(e))` rebuilds `e`."""

from __future__ import annotations

from ..shapes import fmt
from .base import Printer


class TextPrinter(Printer):
    language = "text"


def to_text(node, symbols=None) -> str:
    """An expression in matcalc's own language."""
    return TextPrinter(symbols).doprint(node)


def declarations(problem) -> list[str]:
    return [f"{name}: {fmt(v.shape)}" for name, v in problem.variables.items()]


def problem_text(problem) -> str:
    """The problem as a program in the input language."""
    printer = TextPrinter()
    lines = declarations(problem)
    for name, node in problem.intermediates.items():
        lines.append(f"{name} = {printer.define(node)}")
    if problem.output_name not in problem.intermediates:
        lines.append(printer.doprint(problem.output))
    lines.append("wrt " + ", ".join(problem.wrt))
    return "\n".join(lines)


def program_text(program, problem) -> str:
    """The gradients as lines `name = expression` in the input language."""
    definition = TextPrinter().define(problem.output)
    head = f"# gradient of {problem.output_name} = {definition}"
    printer = TextPrinter()
    if program.seed is not None:
        head += f", given {program.seed.name} = ∂L/∂{problem.output_name}"
    lines = [head]
    for b in program.needed(name for _, name in program.gradients):
        lines.append(f"{b.name} = {printer.doprint(b.expr)}")
    return "\n".join(lines)
