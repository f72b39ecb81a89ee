"""Output targets: the input language (text), LaTeX, Unicode, and code for
NumPy, the array API standard, PyTorch and JAX.

Each target owns a forms registry (`text.FORMS`, `latex.FORMS`,
`unicode.FORMS`, `numpy_forms.FORMS`, with NumPy's helper functions in
`numpy_forms.HELPERS`) listing only its exceptions to a default made from
the operator's name. Importing the package registers the text and LaTeX
forms that nodes, problems and results print through (see `matcalc.hooks`)."""

from . import latex, text  # noqa: F401

# The code targets by name (`--target`, `codegen(target=...)`): the module of
# this package whose `generate(gradient, extras)` writes one, and `load`.
CODE_TARGETS = {"numpy": "numpy", "array-api": "array_api", "torch": "torch", "jax": "jax"}


def code_target(name: str):
    """The module of the code target `name`; a MatcalcError names the others."""
    from importlib import import_module

    from ..errors import MatcalcError
    if name not in CODE_TARGETS:
        raise MatcalcError(f"unknown code target {name!r}; the targets are "
                           + ", ".join(CODE_TARGETS))
    return import_module(f"{__name__}.{CODE_TARGETS[name]}")
