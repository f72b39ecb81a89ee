"""The version that the package and the generated code report (pyproject.toml
states it too)."""

__version__ = "0.1.0"
