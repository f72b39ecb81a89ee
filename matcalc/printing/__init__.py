"""Printers: the input language (text), LaTeX, and NumPy source."""
