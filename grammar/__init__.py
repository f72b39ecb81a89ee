"""The matcalc input language, as a Lark grammar (package data)."""
