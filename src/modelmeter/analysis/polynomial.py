"""Exact polynomials in one integer variable, found from a few evaluations.

A cost that grows with a size (a decode step's MACs in the context length, a forward pass's
FLOPs in the batch) is a polynomial in that size with rational coefficients. :func:`fit`
finds it from as few evaluations as its degree needs, then checks it at a point it was not
fitted on, so a cost that is not polynomial (a data-dependent shape, a piecewise rule) is
refused rather than extrapolated. Arithmetic is in :class:`fractions.Fraction`: the
polynomial gives the exact count at any size, and :meth:`Polynomial.sum_range` sums it over
a range in closed form (forward differences and the hockey-stick identity), without one
evaluation per term.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

Number = int | Fraction


class NotPolynomial(ValueError):
    """The evaluations do not lie on a polynomial of the allowed degree."""


@dataclass(frozen=True)
class Polynomial:
    """``c0 + c1*x + c2*x**2 + ...`` with exact rational coefficients (no trailing zeros)."""

    coefficients: tuple[Fraction, ...] = ()
    variable: str = "x"

    def __post_init__(self) -> None:
        coeffs = [Fraction(c) for c in self.coefficients]
        while coeffs and coeffs[-1] == 0:
            coeffs.pop()
        object.__setattr__(self, "coefficients", tuple(coeffs))

    @property
    def degree(self) -> int:
        """The degree (-1 for the zero polynomial)."""
        return len(self.coefficients) - 1

    def __call__(self, x: Number) -> Fraction:
        acc = Fraction(0)
        for c in reversed(self.coefficients):  # Horner
            acc = acc * x + c
        return acc

    def at(self, x: Number) -> int:
        """The value at ``x`` as an int; ValueError when it is not a whole number."""
        v = self(x)
        if v.denominator != 1:
            raise ValueError(f"{self.format()} is not whole at {self.variable}={x}: {v}")
        return v.numerator

    def sum_range(self, lo: int, hi: int) -> Fraction:
        """``sum(p(x) for x in range(lo, hi + 1))`` in closed form (0 when ``hi < lo``).

        With ``p(lo + t) = sum_j d_j * C(t, j)`` (``d_j`` the j-th forward difference at
        ``lo``) and ``sum_{t=0}^{n-1} C(t, j) = C(n, j + 1)``, the sum of n terms is
        ``sum_j d_j * C(n, j + 1)``."""
        n = hi - lo + 1
        if n <= 0:
            return Fraction(0)
        values = [self(lo + t) for t in range(self.degree + 1)]
        total = Fraction(0)
        j = 0
        while values:
            total += values[0] * math.comb(n, j + 1)
            values = [b - a for a, b in zip(values, values[1:])]
            j += 1
        return total

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: coefficients from the constant up, ints where whole, else "p/q"."""
        return {"variable": self.variable, "coefficients": [_exact(c) for c in self.coefficients]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Polynomial:
        return cls(tuple(Fraction(c) for c in d.get("coefficients", ())), d.get("variable", "x"))

    def format(self, variable: str | None = None, digits: int = 3) -> str:
        """For people: ``6.61e9 + 2.62e5·c`` (coefficients rounded to ``digits``)."""
        var = variable or self.variable
        terms = []
        for power, c in enumerate(self.coefficients):
            if c == 0:
                continue
            number = _short(c, digits)
            if power == 0:
                terms.append(number)
            else:
                monomial = var if power == 1 else f"{var}^{power}"
                terms.append(monomial if number == "1" else f"{number}·{monomial}")
        if not terms:
            return "0"
        return " + ".join(terms).replace("+ -", "- ")


def _exact(c: Fraction) -> int | str:
    return c.numerator if c.denominator == 1 else f"{c.numerator}/{c.denominator}"


def _short(c: Fraction, digits: int) -> str:
    if c.denominator == 1 and abs(c.numerator) < 10**digits:
        return str(c.numerator)
    text = f"{float(c):.{digits}g}"
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + m[1].replace("+", "") + m[2], text)


def interpolate(xs: Sequence[int], ys: Sequence[Number], variable: str = "x") -> Polynomial:
    """The polynomial of degree < len(xs) through the points (Newton's divided differences)."""
    if len(xs) != len(ys) or len(set(xs)) != len(xs):
        raise ValueError("interpolate needs as many distinct points as values")
    table = [Fraction(y) for y in ys]
    newton: list[Fraction] = []
    for level in range(len(xs)):
        newton.append(table[0])
        table = [
            (table[i + 1] - table[i]) / (xs[i + level + 1] - xs[i]) for i in range(len(table) - 1)
        ]
    coeffs: list[Fraction] = [Fraction(0)]
    for k in range(len(xs) - 1, -1, -1):  # Horner on the Newton form
        shifted = [Fraction(0)] + coeffs  # * x
        for i, c in enumerate(coeffs):
            shifted[i] -= c * xs[k]
        shifted[0] += newton[k]
        coeffs = shifted
    return Polynomial(tuple(coeffs), variable)


def fit(
    f: Callable[[int], Number],
    max_degree: int,
    points: Iterable[int],
    *,
    checks: Sequence[int] = (),
    variable: str = "x",
) -> Polynomial:
    """The lowest-degree polynomial (at most ``max_degree``) that ``f`` follows.

    ``points`` are tried in order: degree d is interpolated on the first d+1 and checked
    at the next, so a polynomial of degree d costs d+2 evaluations. Every point of
    ``checks`` (never fitted on) is checked as well. NotPolynomial when no degree up to
    ``max_degree`` holds, naming the point where it broke."""
    it = iter(points)
    xs: list[int] = []
    ys: list[Number] = []

    def take() -> None:
        try:
            x = next(it)
        except StopIteration:
            raise ValueError(f"fit needs at least {max_degree + 2} points") from None
        xs.append(x)
        ys.append(f(x))

    take()
    for _ in range(max_degree + 1):
        take()
        p = interpolate(xs[:-1], ys[:-1], variable)
        if p(xs[-1]) == ys[-1]:
            for x in checks:
                y = f(x)
                if p(x) != y:
                    raise NotPolynomial(
                        f"not a polynomial of degree <= {max_degree} in {variable}: "
                        f"{p.format()} gives {p(x)} at {variable}={x}, the trace {y}"
                    )
            return p
    raise NotPolynomial(
        f"not a polynomial of degree <= {max_degree} in {variable} over "
        f"{variable}={', '.join(map(str, xs))}"
    )


@dataclass(frozen=True)
class Piecewise:
    """Polynomials on consecutive ranges: ``pieces[i]`` holds from ``starts[i]`` up to the
    next start (the last one for good). For a cost that changes rule at known sizes, e.g. a
    sliding-window layer that stops growing at the window."""

    starts: tuple[int, ...]
    pieces: tuple[Polynomial, ...]

    def __post_init__(self) -> None:
        if not self.starts or len(self.starts) != len(self.pieces):
            raise ValueError("Piecewise needs one start per piece")
        if list(self.starts) != sorted(set(self.starts)):
            raise ValueError("Piecewise starts must increase")

    def _piece(self, x: int) -> Polynomial:
        if x < self.starts[0]:
            raise ValueError(f"{x} is below the first piece (starts at {self.starts[0]})")
        i = max(i for i, s in enumerate(self.starts) if s <= x)
        return self.pieces[i]

    def __call__(self, x: int) -> Fraction:
        return self._piece(x)(x)

    def sum_range(self, lo: int, hi: int) -> Fraction:
        """Sum over ``lo..hi`` (inclusive), each piece in closed form."""
        if hi >= lo and lo < self.starts[0]:
            raise ValueError(f"range {lo}..{hi} starts below the first piece ({self.starts[0]})")
        total = Fraction(0)
        bounds = list(self.starts[1:]) + [None]
        for start, end, p in zip(self.starts, bounds, self.pieces):
            a = max(lo, start)
            b = hi if end is None else min(hi, end - 1)
            if a <= b:
                total += p.sum_range(a, b)
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "pieces": [
                {"from": s, **p.to_dict()} for s, p in zip(self.starts, self.pieces)
            ]
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Piecewise:
        pieces = d.get("pieces", [])
        return cls(
            tuple(int(p["from"]) for p in pieces),
            tuple(Polynomial.from_dict(p) for p in pieces),
        )


_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


@dataclass(frozen=True)
class MultiPolynomial:
    """``sum c * x1**e1 * x2**e2 ...`` over several integer variables, exact (Fraction).

    ``terms`` maps exponent tuples (one exponent per variable, in ``variables``' order) to
    non-zero coefficients. Found by :func:`modelmeter.analysis.multifit.fit_multi`."""

    variables: tuple[str, ...]
    terms: tuple[tuple[tuple[int, ...], Fraction], ...] = ()

    def __post_init__(self) -> None:
        terms = sorted(
            ((tuple(e), Fraction(c)) for e, c in self.terms if c != 0),
            key=lambda t: (sum(t[0]), t[0]),
        )
        object.__setattr__(self, "variables", tuple(self.variables))
        object.__setattr__(self, "terms", tuple(terms))

    @classmethod
    def from_terms(cls, variables: Sequence[str], terms: dict[tuple[int, ...], Number]) -> MultiPolynomial:
        return cls(tuple(variables), tuple(terms.items()))

    def degree(self, variable: str | None = None) -> int:
        """The total degree, or the degree in one variable (-1 for the zero polynomial)."""
        if not self.terms:
            return -1
        if variable is None:
            return max(sum(e) for e, _ in self.terms)
        i = self.variables.index(variable)
        return max(e[i] for e, _ in self.terms)

    def __call__(self, *args: Number, **kwargs: Number) -> Fraction:
        point = dict(zip(self.variables, args)) | kwargs
        missing = [v for v in self.variables if v not in point]
        if missing:
            raise TypeError(f"missing value of {', '.join(missing)}")
        xs = [point[v] for v in self.variables]
        acc = Fraction(0)
        for exps, c in self.terms:
            term = c
            for x, e in zip(xs, exps):
                term *= Fraction(x) ** e
            acc += term
        return acc

    def at(self, *args: int, **kwargs: int) -> int:
        """The value as an int; ValueError when it is not a whole number."""
        v = self(*args, **kwargs)
        if v.denominator != 1:
            raise ValueError(f"{self.format()} is not whole at {args or kwargs}: {v}")
        return v.numerator

    def divided_by(self, variable: str) -> MultiPolynomial | None:
        """This polynomial over ``variable`` when every term has exactly one factor of it
        (a cost linear in the batch with nothing outside it: the per-item cost), else None."""
        i = self.variables.index(variable)
        if not self.terms or any(e[i] != 1 for e, _ in self.terms):
            return None
        rest = tuple(v for v in self.variables if v != variable)
        return MultiPolynomial(rest, tuple((e[:i] + e[i + 1 :], c) for e, c in self.terms))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: one term per non-zero coefficient, ``powers`` in ``variables``' order,
        the coefficient an int where whole, else "p/q"."""
        return {
            "variables": list(self.variables),
            "terms": [{"powers": list(e), "coefficient": _exact(c)} for e, c in self.terms],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MultiPolynomial:
        return cls(
            tuple(d.get("variables", ())),
            tuple((tuple(int(p) for p in t["powers"]), Fraction(t["coefficient"]))
                  for t in d.get("terms", ())),
        )  # fmt: skip

    def format(self, names: dict[str, str] | None = None, digits: int = 3) -> str:
        """For people: ``6.61e9·s + 2.62e5·s²`` (``names`` shortens variables)."""
        names = names or {}
        parts = []
        for exps, c in self.terms:
            number = _short(c, digits)
            factors = [
                names.get(v, v) + (str(e).translate(_SUPERSCRIPT) if e > 1 else "")
                for v, e in zip(self.variables, exps)
                if e
            ]
            monomial = "·".join(factors)
            if not monomial:
                parts.append(number)
            else:
                parts.append(monomial if number == "1" else f"{number}·{monomial}")
        return " + ".join(parts).replace("+ -", "- ") if parts else "0"


@dataclass(frozen=True)
class Maximum:
    """The largest of several polynomials at every point: an activation peak, the most bytes
    live at any moment of a run, where each moment's live bytes are a polynomial in the sizes.
    ``pieces`` holds none that another is at least as large as everywhere (every coefficient
    of the difference >= 0, the sizes being positive)."""

    pieces: tuple[MultiPolynomial, ...]

    @property
    def variables(self) -> tuple[str, ...]:
        return self.pieces[0].variables if self.pieces else ()

    def __call__(self, *args: Number, **kwargs: Number) -> Fraction:
        return max((p(*args, **kwargs) for p in self.pieces), default=Fraction(0))

    def at(self, *args: int, **kwargs: int) -> int:
        return max((p.at(*args, **kwargs) for p in self.pieces), default=0)

    def degree(self, variable: str | None = None) -> int:
        return max((p.degree(variable) for p in self.pieces), default=-1)

    def format(self, names: dict[str, str] | None = None, digits: int = 3) -> str:
        parts = [p.format(names, digits) for p in self.pieces]
        return parts[0] if len(parts) == 1 else "max(" + ", ".join(parts) + ")"

    def to_dict(self) -> dict[str, Any]:
        return {"variables": list(self.variables), "maximum_of": [p.to_dict() for p in self.pieces]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Maximum:
        return cls(tuple(MultiPolynomial.from_dict(p) for p in d.get("maximum_of", ())))
