"""The library's functions: parse, problem, grad, codegen, compile, check, rules."""

from __future__ import annotations


from .errors import MatcalcError, NameResolutionError
from .ad.gradient import derive
from .frontend.parser import parse, parse_pieces
from .frontend.reading import misread_function
from .ir.problem import Problem


def problem(expr: str, *, wrt=None, name: str = "f", **shapes: str) -> Problem:
    """A problem from an expression and its variables' shapes as keywords.

    `problem("sum(X @ w)", X="N x D", w="D")`; shapes are written as in a
    problem file (`"N x D"`, `"H"`, `"scalar"`). An error points into the
    argument it is in: `<expr>:1:9` is the ninth character of `expr`,
    `<shape w>` and `<wrt>` the keywords.
    """
    for what, text in [("expr", expr), ("name", name), *shapes.items()]:
        if not isinstance(text, str):
            raise MatcalcError(f"problem(): {what} must be text, got {type(text).__name__}")
        if what != "expr" and ("\n" in text or ";" in text):
            raise MatcalcError(f"problem(): {what} is one shape such as 'N x D', not "
                               "statements; use matcalc.parse for a problem's text")
    if not name.isidentifier():
        raise MatcalcError(f"problem(): name is the function's name, such as 'f', got {name!r}")
    pieces = [(f"<shape {n}>", f"{n}: ", s) for n, s in shapes.items()]
    pieces.append(("<expr>", f"{name} = ", expr))
    if wrt is not None:
        names = [wrt] if isinstance(wrt, str) else list(wrt) if _iterable(wrt) else [wrt]
        if not all(isinstance(w, str) for w in names):
            raise MatcalcError(f"problem(): wrt is a name or names, got {wrt!r}")
        if not "".join(names).strip():
            raise NameResolutionError("problem(): wrt is empty: name the variables to "
                                      f"differentiate by, e.g. {', '.join(list(shapes)[:2])}")
        pieces.append(("<wrt>", "wrt ", ", ".join(names)))
    p = parse_pieces(pieces)
    if p.output_name != name:
        raise MatcalcError("problem(): expr is one expression, not statements; use "
                           "matcalc.parse for a problem with named intermediates")
    return p


def _iterable(x) -> bool:
    try:
        iter(x)
    except TypeError:
        return False
    return True


def _problem(p, wrt=None) -> Problem:
    if isinstance(p, str):
        p = parse(p)
    if not isinstance(p, Problem):
        raise MatcalcError(f"expected a Problem or problem text, got {type(p).__name__}")
    misread = misread_function(p)
    if misread is not None:
        raise misread
    return p if wrt is None else p.with_wrt(wrt)


def grad(p, wrt=None, steps: bool = False):
    """The closed-form gradients of a problem (or problem text), a
    `Gradient`; with `steps=True` its derivation, `g.steps`, is made too."""
    g = derive(_problem(p, wrt))
    if steps:
        g.derivation()  # made now, kept as g.steps
    return g


def hessian(p, wrt=None):
    """∂²L/∂x² (wrt="x") or ∂²L/∂x∂y (wrt="x,y") in closed form where one
    exists (see `matcalc.second`); with no wrt and several variables to
    differentiate by, every block on and above the diagonal."""
    from .ad.second import hessian as run
    return run(_problem(p), wrt)


def hvp(p, wrt=None):
    """Hessian-vector products (H v)_X, in a direction v_X per variable."""
    from .ad.second import hvp as run
    return run(_problem(p, wrt))


def jacobian(p, wrt=None):
    """∂f/∂x of a scalar-, vector- or matrix-valued function."""
    from .ad.second import jacobian as run
    return run(_problem(p), wrt)


def _extras(problem, hessian_wrt, with_hvp, jacobian_wrt) -> list:
    from .ad import second
    extras = []
    if hessian_wrt is not None and hessian_wrt is not False:
        extras.append(second.hessian(problem, None if hessian_wrt is True else hessian_wrt))
    if with_hvp:
        extras.append(second.hvp(problem))
    if jacobian_wrt is not None and jacobian_wrt is not False:
        extras.append(second.jacobian(problem, None if jacobian_wrt is True else jacobian_wrt))
    return extras


def codegen(p, wrt=None, *, target="numpy", hessian=None, hvp=False, jacobian=None) -> str:
    """The source of a module with forward, backward, value_and_grad,
    and `hessian(**inputs)` (hessian="w", "x,y" or True for the problem's
    wrt), `hvp(v, /, **inputs)`
    (hvp=True) and `jacobian(**inputs)` (jacobian=True or names) when asked,
    on the code `target` ("numpy", "array-api", "torch", "jax":
    `targets.CODE_TARGETS`)."""
    from .targets import code_target
    generate = code_target(target).generate
    g = grad(p, wrt)
    return generate(g, _extras(g.problem, hessian, hvp, jacobian))


def compile(p, wrt=None, *, target="numpy", hessian=None, hvp=False,  # noqa: A001
            jacobian=None):
    """The generated module, loaded; its text is `module.source`."""
    from .targets import code_target
    problem = _problem(p)
    source = codegen(problem, wrt, target=target, hessian=hessian, hvp=hvp, jacobian=jacobian)
    return code_target(target).load(source, problem.output_name)


def check(p, wrt=None, dims=None, inputs=None, seed: int = 0, tol: float = 1e-6,
          against=None):
    """Finite-difference check of every gradient (see `matcalc.verify.check`).

    `dims` gives sizes ({"N": 5}); `inputs` gives values ({"X": array}),
    which set the sizes they bind (a conflict with `dims` is an error); the
    inputs not given are drawn at random in their declared domains. A given
    input of the wrong shape, or outside its declared domain, is a
    `MatcalcError` naming it. With `against` (a hand-written backward
    function, or 'module:function'), that function's gradients are compared
    with matcalc's at those inputs instead (`checks.against.check_against`).
    """
    if against is not None:
        from .checks.against import check_against
        return check_against(_problem(p, wrt), against, dims=dims, seed=seed, tol=tol,
                             inputs=inputs)
    from .checks.verify import check as run
    return run(_problem(p, wrt), dims=dims, inputs=inputs, seed=seed, tol=tol)


__all__ = ["parse", "problem", "grad", "codegen", "compile", "check"]


def rules() -> list:
    """Every named rewrite rule, as (name, rewrites, identity): the
    identities the builders apply as each node is built (`rewrites` is the
    operator), then the rules each derivative is simplified by."""
    from .passes.simplify import listing
    return listing()
