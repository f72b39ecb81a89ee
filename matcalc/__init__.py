"""matcalc: symbolic matrix calculus for NumPy users."""
