"""Exact polynomial fitting and closed-form sums (analysis/polynomial.py)."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelmeter.analysis.polynomial import (
    NotPolynomial,
    Piecewise,
    Polynomial,
    fit,
    interpolate,
)


def test_value_and_degree():
    # 3 + 0*x + 2*x^2 at x=5: 3 + 50 = 53
    p = Polynomial((3, 0, 2), "x")
    assert p.degree == 2
    assert p(5) == 53
    assert p.at(5) == 53
    # trailing zeros dropped: 7 + 0x is the constant 7
    assert Polynomial((7, 0, 0)).degree == 0
    assert Polynomial(()).degree == -1


def test_decode_shaped_cost_is_found_from_three_evaluations():
    # a decode step: 6,607,077,376 + 262,144*(c+1) = 6,607,339,520 + 262,144*c
    calls = []

    def cost(c: int) -> int:
        calls.append(c)
        return 6_607_077_376 + 262_144 * (c + 1)

    p = fit(cost, 2, [1, 2, 3, 4], checks=[1000], variable="c")
    assert p.coefficients == (Fraction(6_607_339_520), Fraction(262_144))
    # degree 0 fails at the 2nd point, degree 1 holds at the 3rd: 3 evaluations + 1 check
    assert calls == [1, 2, 3, 1000]


def test_quadratic_with_rational_coefficients():
    # x*(x+1)/2 = x/2 + x^2/2: rational coefficients, whole values
    p = fit(lambda x: x * (x + 1) // 2, 3, range(1, 10), checks=[77])
    assert p.coefficients == (Fraction(0), Fraction(1, 2), Fraction(1, 2))
    assert p.at(77) == 3003  # 77*78/2
    assert p.to_dict() == {"variable": "x", "coefficients": [0, "1/2", "1/2"]}
    assert Polynomial.from_dict(p.to_dict()) == p


def test_not_polynomial_is_refused_at_the_held_out_point():
    # min(x, 8) is linear on the fitted points 1,2,3 but not at 20
    with pytest.raises(NotPolynomial, match="x=20"):
        fit(lambda x: min(x, 8), 2, [1, 2, 3, 4], checks=[20])
    # 2^x is no polynomial of degree <= 2 on 1..4
    with pytest.raises(NotPolynomial):
        fit(lambda x: 2**x, 2, [1, 2, 3, 4])


def test_sum_range_closed_form():
    # sum_{c=10}^{14} (5 + 3c) = 5*5 + 3*(10+11+12+13+14) = 25 + 180 = 205
    p = Polynomial((5, 3))
    assert p.sum_range(10, 14) == 205
    # sum of squares 1..100 = 100*101*201/6 = 338,350
    assert Polynomial((0, 0, 1)).sum_range(1, 100) == 338_350
    assert p.sum_range(5, 4) == 0  # empty range


@given(
    st.lists(st.integers(-1000, 1000), min_size=1, max_size=5),
    st.integers(-50, 50),
    st.integers(0, 60),
)
def test_sum_range_equals_the_loop(coeffs, lo, n):
    p = Polynomial(tuple(coeffs))
    assert p.sum_range(lo, lo + n - 1) == sum(p(x) for x in range(lo, lo + n))


@given(st.lists(st.integers(-10**6, 10**6), min_size=1, max_size=4))
def test_interpolate_recovers_the_coefficients(coeffs):
    p = Polynomial(tuple(coeffs))
    xs = [3, 7, 8, 20]
    assert interpolate(xs, [p(x) for x in xs]) == p


def test_format():
    assert Polynomial((6_607_339_520, 262_144)).format("c") == "6.61e9 + 2.62e5·c"
    assert Polynomial((0, 1)).format() == "x"
    assert Polynomial((4, -3)).format() == "4 - 3·x"
    assert Polynomial(()).format() == "0"


def test_piecewise_sliding_window():
    # a layer attending to min(c, 4) keys: 10 + c below the window, 14 after
    pw = Piecewise((1, 4), (Polynomial((10, 1)), Polynomial((14,))))
    assert [pw(c) for c in (1, 3, 4, 9)] == [11, 13, 14, 14]
    # sum over 2..6: 12 + 13 + 14*3 = 67
    assert pw.sum_range(2, 6) == 67
    assert Piecewise.from_dict(pw.to_dict()) == pw
    with pytest.raises(ValueError, match="below the first piece"):
        pw.sum_range(0, 3)
