"""Printers: the input language (text), LaTeX, Unicode; NumPy source is in emit.

Importing the package registers the text and LaTeX forms that nodes, problems
and results print through (see `matcalc.hooks`)."""

from . import latex, text  # noqa: F401
