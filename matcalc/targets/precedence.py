"""Precedence levels shared by the printers (higher binds tighter).

They follow Python's, which the text and NumPy forms must respect; LaTeX uses
the same levels so that parentheses appear exactly where they are needed.
"""

LOWEST = 0
COMPARE = 5
ADD = 10
MUL = 20
NEG = 30
POW = 40
POSTFIX = 50
ATOM = 60
