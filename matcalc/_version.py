"""The version of matcalc (one place: the package, the generated code and pyproject)."""

__version__ = "0.1.0"
