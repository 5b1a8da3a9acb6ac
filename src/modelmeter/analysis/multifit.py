"""Exact polynomials in several integer sizes (batch, sequence length ...), found from as few
evaluations as their degrees need and checked where they were not fitted.

:func:`fit_grid` fits many counts at once (a whole report's figures: every op's MACs, FLOPs
and bytes): along each variable, the others at their first value, each count's degree is the
lowest whose interpolation on the first d+1 points predicts point d+2 (so a degree d costs
d+2 evaluations per variable); the polynomial is then interpolated on the tensor grid of the
highest degrees found (Lagrange) and checked at every evaluated point it was not fitted on,
always including one point off the grid in every variable. A count that fails (no degree up
to the bound holds, a check point disagrees, or a value is missing because the model's ops
changed with the size) is *refused* with the reason; the others stand. Evaluations are
memoised: no point is traced twice.

:func:`fit_multi` is the one-count form, returning a
:class:`~modelmeter.analysis.polynomial.MultiPolynomial`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from modelmeter.analysis.polynomial import Maximum, MultiPolynomial, NotPolynomial, interpolate

Point = tuple[int, ...]
Vector = Sequence[int | Fraction | None]


def _weights(nodes: Sequence[int], x: int) -> list[Fraction]:
    """Lagrange weights: ``p(x) = sum w_i * p(nodes[i])`` for any p of degree < len(nodes)."""
    out = []
    for i, xi in enumerate(nodes):
        w = Fraction(1)
        for j, xj in enumerate(nodes):
            if j != i:
                w *= Fraction(x - xj, xi - xj)
        out.append(w)
    return out


def _integer_weights(weights: Sequence[Fraction]) -> tuple[list[int], int]:
    """The weights over one common denominator: (numerators, denominator)."""
    den = math.lcm(*(w.denominator for w in weights)) if weights else 1
    return [int(w * den) for w in weights], den


def _combine(numerators: Sequence[int], den: int, vectors: Sequence[Vector]) -> list[Fraction | None]:
    """``sum n_i * v_i / den`` per component, None where any value is missing."""
    out: list[Fraction | None] = []
    for values in zip(*vectors):
        if any(v is None for v in values):
            out.append(None)
            continue
        total = sum(n * v for n, v in zip(numerators, values))  # type: ignore[operator]
        out.append(Fraction(total, den) if total % den else Fraction(total // den))
    return out


@dataclass
class GridFit:
    """Polynomials of every component of a vector-valued function on a tensor grid.

    ``axes[k]``: the grid's nodes in ``variables[k]``; ``values``: every evaluated point's
    vector (grid points and checks); ``checked``: the points checked, never fitted on;
    ``refused``: component -> why it is not a polynomial."""

    variables: tuple[str, ...]
    axes: tuple[tuple[int, ...], ...]
    values: dict[Point, Vector]
    checked: tuple[Point, ...]
    refused: dict[int, str] = field(default_factory=dict)
    size: int = 0

    @property
    def grid(self) -> list[Point]:
        return list(itertools.product(*self.axes))

    def weights(self, point: Point) -> tuple[list[int], int]:
        """Integer Lagrange weights of the grid points at ``point`` and their denominator."""
        per_axis = [_weights(nodes, x) for nodes, x in zip(self.axes, point)]
        return _integer_weights([math.prod(ws) for ws in itertools.product(*per_axis)])

    def evaluate(self, point: Point, count: int | None = None) -> list[Fraction | None]:
        """Every component (the first ``count``) at ``point``: the traced values where it was
        evaluated, else the polynomials' (None for refused components)."""
        point = tuple(point)
        if point in self.values:
            return [None if v is None else Fraction(v) for v in self.values[point][:count]]
        numerators, den = self.weights(point)
        out = _combine(numerators, den, [self.values[g][:count] for g in self.grid])
        return [None if i in self.refused else v for i, v in enumerate(out)]

    def coefficient_matrix(self) -> tuple[list[tuple[int, ...]], list[list[int]], int]:
        """(monomials, integer weights per monomial and grid point, their denominator): the
        coefficient of monomial m in component c is ``sum_g W[m][g] * values[g][c] / den``."""
        bases = []
        for nodes in self.axes:
            basis = []
            for i in range(len(nodes)):
                p = interpolate(nodes, [1 if j == i else 0 for j in range(len(nodes))])
                basis.append(list(p.coefficients) + [Fraction(0)] * (len(nodes) - 1 - p.degree))
            bases.append(basis)
        monomials = list(itertools.product(*(range(len(a)) for a in self.axes)))
        idx = list(itertools.product(*(range(len(a)) for a in self.axes)))
        rows = [[math.prod(bases[k][i][e] for k, (i, e) in enumerate(zip(g, m))) for g in idx]
                for m in monomials]  # fmt: skip
        den = math.lcm(*(w.denominator for row in rows for w in row)) if rows else 1
        return monomials, [[int(w * den) for w in row] for row in rows], den

    def coefficients(self, components: Sequence[int]) -> tuple[list[tuple[int, ...]], list[list[int]], int]:
        """For each component, its coefficients' numerators over one denominator (fast: ints)."""
        monomials, rows, den = self.coefficient_matrix()
        grid = [self.values[g] for g in self.grid]
        out = []
        for c in components:
            ys = [v[c] for v in grid]
            out.append([sum(w * y for w, y in zip(row, ys)) for row in rows])  # type: ignore[misc]
        return monomials, out, den

    def polynomial(self, component: int) -> MultiPolynomial:
        """One component's polynomial; NotPolynomial when it was refused."""
        if component in self.refused:
            raise NotPolynomial(self.refused[component])
        terms: dict[tuple[int, ...], Fraction] = {}
        bases = []
        for nodes in self.axes:  # the coefficients of each univariate Lagrange basis polynomial
            basis = []
            for i in range(len(nodes)):
                p = interpolate(nodes, [1 if j == i else 0 for j in range(len(nodes))])
                basis.append(p.coefficients)
            bases.append(basis)
        for g, idx in zip(self.grid, itertools.product(*(range(len(a)) for a in self.axes))):
            y = self.values[g][component]
            assert y is not None
            per_axis = [bases[k][i] for k, i in enumerate(idx)]
            for powers in itertools.product(*(range(len(c)) for c in per_axis)):
                c = math.prod(per_axis[k][e] for k, e in enumerate(powers))
                terms[powers] = terms.get(powers, Fraction(0)) + c * y
        return MultiPolynomial.from_terms(self.variables, terms)


def fit_grid(
    f: Callable[[Point], Vector],
    variables: Sequence[str],
    points: Sequence[Sequence[int]],
    max_degrees: Sequence[int],
    *,
    checks: Sequence[Point] = (),
) -> GridFit:
    """Fit every component of ``f`` (a vector of ints, None where a value is unknown) as a
    polynomial in ``variables``. ``points[k]``: the values of variable k to fit on, in the
    order they are tried (at least ``max_degrees[k] + 2``); ``checks``: further points to
    check (never fitted on). See the module doc."""
    variables = tuple(variables)
    for name, pts, d in zip(variables, points, max_degrees, strict=True):
        if len(pts) < d + 2 or len(set(pts)) != len(pts):
            raise ValueError(f"{name}: fitting up to degree {d} needs {d + 2} distinct points")
    memo: dict[Point, Vector] = {}

    def value(p: Point) -> Vector:
        if p not in memo:
            memo[p] = list(f(p))
        return memo[p]

    base = tuple(pts[0] for pts in points)
    size = len(value(base))
    refused: dict[int, str] = {}
    degrees = [[0] * len(variables) for _ in range(size)]
    for k, (name, pts, max_d) in enumerate(zip(variables, points, max_degrees)):
        def along(x: int, k: int = k) -> Vector:
            return value(base[:k] + (x,) + base[k + 1 :])

        _axis_degrees(along, pts, max_d, name, degrees, refused, k, size)
    top = [max([degrees[c][k] for c in range(size) if c not in refused], default=0)
           for k in range(len(variables))]  # fmt: skip
    axes = tuple(tuple(pts[: d + 1]) for pts, d in zip(points, top))
    for g in itertools.product(*axes):
        value(g)
    diagonal = tuple(pts[d + 1] for pts, d in zip(points, top))
    value(diagonal)
    for c in checks:
        value(tuple(c))
    fitted = GridFit(variables, axes, memo, (), refused, size)
    on_grid = set(fitted.grid)
    held_out = tuple(p for p in memo if p not in on_grid)
    fitted.checked = held_out
    for p in held_out:
        _check(fitted, p, memo[p], refused)
    return fitted


def _axis_degrees(
    along: Callable[[int], Vector],
    pts: Sequence[int],
    max_d: int,
    name: str,
    degrees: list[list[int]],
    refused: dict[int, str],
    k: int,
    size: int,
) -> None:
    """Each component's lowest degree in variable k (the others fixed), or its refusal."""
    open_ = {c for c in range(size) if c not in refused}
    ys = [along(pts[0])]
    for d in range(max_d + 1):
        if not open_:
            return
        ys.append(along(pts[d + 1]))
        numerators, den = _integer_weights(_weights(pts[: d + 1], pts[d + 1]))
        predicted = _combine(numerators, den, ys[:-1])
        for c in list(open_):
            actual = ys[-1][c]
            if actual is None or predicted[c] is None:
                refused[c] = f"a value is missing (the model's ops change with {name})"
                open_.discard(c)
            elif predicted[c] == actual:
                degrees[c][k] = d
                open_.discard(c)
    for c in open_:
        refused[c] = (
            f"not a polynomial of degree <= {max_d} in {name} over "
            f"{name}={', '.join(map(str, pts[: max_d + 2]))}"
        )


def _check(fitted: GridFit, point: Point, actual: Vector, refused: dict[int, str]) -> None:
    numerators, den = fitted.weights(point)
    predicted = _combine(numerators, den, [fitted.values[g] for g in fitted.grid])
    where = ", ".join(f"{v}={x}" for v, x in zip(fitted.variables, point))
    for c, (p, a) in enumerate(zip(predicted, actual)):
        if c in refused:
            continue
        if p is None or a is None:
            refused[c] = f"a value is missing at {where} (the model's ops change with the size)"
        elif p != a:
            refused[c] = f"the fit gives {p} at {where}, the trace {a}: not a polynomial"


def fit_multi(
    f: Callable[..., int | Fraction],
    max_degrees: Mapping[str, int],
    points: Mapping[str, Sequence[int]] | None = None,
    *,
    checks: Sequence[Mapping[str, int]] = (),
) -> MultiPolynomial:
    """The polynomial ``f(**sizes)`` follows, of degree at most ``max_degrees[v]`` in each
    variable (fitted on ``points[v]``, default 1, 2, 3 ...; see :func:`fit_grid`), checked off
    its grid and at ``checks``; NotPolynomial when it does not hold."""
    variables = tuple(max_degrees)
    pts = [
        list((points or {}).get(v) or range(1, max_degrees[v] + 3)) for v in variables
    ]

    def vector(p: Point) -> list[int | None]:
        return [f(**dict(zip(variables, p)))]

    fitted = fit_grid(
        vector,
        variables,
        pts,
        [max_degrees[v] for v in variables],
        checks=[tuple(c[v] for v in variables) for c in checks],
    )
    return fitted.polynomial(0)


def maximum(fitted: GridFit, components: Sequence[int]) -> Maximum:
    """The largest of the components' polynomials, those another dominates (every coefficient
    of the difference >= 0: at least as large at every positive size) left out."""
    monomials, numerators, den = fitted.coefficients(components)
    probe = [sum(m) for m in monomials]  # rank by the value at a large size first
    unique = sorted({tuple(n) for n in numerators},
                    key=lambda n: sum(c * 1000**d for c, d in zip(n, probe)), reverse=True)  # fmt: skip
    kept: list[tuple[int, ...]] = []
    for n in unique:
        if not any(all(a >= b for a, b in zip(q, n)) for q in kept):
            kept.append(n)
    pieces = tuple(
        MultiPolynomial.from_terms(fitted.variables, {m: Fraction(c, den) for m, c in zip(monomials, n)})
        for n in kept
    )
    return Maximum(pieces)


__all__ = ["GridFit", "fit_grid", "fit_multi", "maximum"]
