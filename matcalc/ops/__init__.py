"""Operators: what each one is (the table) and how nodes are built.

`core` defines the entry type and registry, `table` registers the entries,
`builders` builds nodes with the algebra every node obeys (`axes` the
reductions and broadcasts), `rulebook` keeps
the named identities the builders try, `identities`, `stable_forms` and
`textbook_forms` register them,
`symmetry` reads symmetry from structure and `shape_rules` holds the shape
rules.
"""

from . import (diagonal_forms, functions, identities, indexing, ones_forms,  # noqa: F401
               product_forms, rulebook, stable_forms, table, textbook_forms)  # (they register)
from . import quotient_forms  # noqa: F401  (registers after textbook_forms: tried last)
from . import block_forms  # noqa: F401  (after indexing, whose unindex it reads)
from . import einsum as _einsum, permute as _permute  # noqa: F401  (they register)
from . import reductions  # noqa: F401  (registers max and min, and the written reductions)
from .builders import (BUILDERS, FLAT, LONG, OPERATORS, _broadcast_vector, _coefficient, add, col,
                       diag, div, exp, eye, func, function_names, is_zero, kron, log, matmul,
                       maximum, minimum, mul, named, neg, ones, outer, power, rebuild, row,
                       shared_adjoint, solve, sub, symmetric_part, transpose, unkron_left,
                       unkron_right, zeros)
from .axes import expand, expand_dims, logsumexp, mean, reduce_sum, softmax, spread, unbroadcast
from .einsum import contract, einsum
from .permute import permute, swapaxes
from .indexing import gather, index, normal_key, reshape, scatter_add, unindex
from .core import ALIASES, OPS, Op, _view, unnamed
from .functions import COMPARISONS, compare, constant_array, norm, where
from .symmetry import CHAIN, is_symmetric
from .table import elementwise
