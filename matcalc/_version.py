"""The version that the package and the generated code report; the one source
of it (pyproject.toml reads it: setuptools' dynamic version)."""

__version__ = "0.1.0"
