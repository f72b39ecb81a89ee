"""Output targets: the input language (text), LaTeX, Unicode and NumPy code.

Each target owns a forms registry (`text.FORMS`, `latex.FORMS`,
`unicode.FORMS`, `numpy_forms.FORMS`, with NumPy's helper functions in
`numpy_forms.HELPERS`) listing only its exceptions to a default made from
the operator's name. Importing the package registers the text and LaTeX
forms that nodes, problems and results print through (see `matcalc.hooks`)."""

from . import latex, text  # noqa: F401
