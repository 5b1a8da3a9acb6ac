"""Exact polynomials in several sizes (analysis/multifit.py, MultiPolynomial in
analysis/polynomial.py): hand-derived coefficients, the number of evaluations, refusals."""

from fractions import Fraction

import pytest

from modelmeter.analysis.multifit import fit_grid, fit_multi
from modelmeter.analysis.polynomial import Maximum, MultiPolynomial, NotPolynomial


def test_linear_layer_macs_are_32_b_s_from_seven_evaluations():
    # Linear(4, 8) over [b, s, 4]: 4 * 8 = 32 MACs per (b, s) position -> 32*b*s
    calls = []

    def macs(b: int, s: int) -> int:
        calls.append((b, s))
        return 32 * b * s

    p = fit_multi(macs, {"b": 2, "s": 2})
    assert p.terms == (((1, 1), Fraction(32)),)
    assert p.format() == "32·b·s"
    # along b at s=1: 1, 2 (degree 0 fails), 3 (degree 1 holds); along s at b=1: 2, 3;
    # the grid {1,2} x {1,2} adds (2, 2); the point off the grid in both: (3, 3). 7 in all.
    assert calls == [(1, 1), (2, 1), (3, 1), (1, 2), (1, 3), (2, 2), (3, 3)]


def test_attention_shaped_cost_and_its_per_item_form():
    # 7 + b*(6*s + 3*s^2): a constant, linear and quadratic in s, linear in b
    p = fit_multi(
        lambda b, s: 7 + b * (6 * s + 3 * s * s),
        {"b": 2, "s": 2},
        {"b": [1, 2, 4, 8], "s": [128, 256, 384, 512]},
        checks=[{"b": 5, "s": 1000}],
    )
    assert dict(p.terms) == {(0, 0): 7, (1, 1): 6, (1, 2): 3}
    assert p.degree() == 3 and p.degree("b") == 1 and p.degree("s") == 2
    assert p.at(b=5, s=1000) == 7 + 5 * (6_000 + 3_000_000)  # 15,030,007
    assert p.divided_by("b") is None  # the constant 7 is not per item
    q = fit_multi(lambda b, s: b * (6 * s + 3 * s * s), {"b": 2, "s": 2})
    per = q.divided_by("b")
    assert per is not None and per.variables == ("s",)
    assert per.format() == "6·s + 3·s²"


def test_rational_coefficients_stay_exact_in_json():
    # b * s*(s+1)/2 (a causal mask's kept entries): b*s/2 + b*s^2/2
    p = fit_multi(lambda b, s: b * s * (s + 1) // 2, {"b": 1, "s": 2})
    assert dict(p.terms) == {(1, 1): Fraction(1, 2), (1, 2): Fraction(1, 2)}
    d = p.to_dict()
    assert d == {
        "variables": ["b", "s"],
        "terms": [
            {"powers": [1, 1], "coefficient": "1/2"},
            {"powers": [1, 2], "coefficient": "1/2"},
        ],
    }
    assert MultiPolynomial.from_dict(d) == p
    assert p.at(b=3, s=9) == 3 * 45  # 3 * (9*10/2) = 135


def test_large_coefficients_print_short():
    # the example: 6.61e9*s + 2.62e5*s^2
    p = MultiPolynomial.from_terms(("s",), {(1,): 6_607_077_376, (2,): 262_144})
    assert p.format() == "6.61e9·s + 2.62e5·s²"


def test_not_polynomial_is_refused():
    # 2**s grows faster than any degree <= 2: the quadratic through s=1,2,3 misses s=4
    with pytest.raises(NotPolynomial, match="not a polynomial of degree <= 2 in s"):
        fit_multi(lambda b, s: b * 2**s, {"b": 1, "s": 2})


def test_held_out_point_catches_a_rule_change():
    # linear up to s=3, then s^3: the fit on s=1,2,3 (degree 1, checked at s=3 ... on the
    # axis) is refused at the far check point s=10
    def f(b: int, s: int) -> int:
        return b * s if s <= 4 else b * s**3

    with pytest.raises(NotPolynomial, match="the trace"):
        fit_multi(f, {"b": 1, "s": 2}, checks=[{"b": 1, "s": 10}])


def test_one_component_refused_the_others_kept():
    # component 0 = 5*b*s; component 1 = s % 3 (not a polynomial); component 2 missing at b=2
    def f(p: tuple[int, int]) -> list[int | None]:
        b, s = p
        return [5 * b * s, s % 3, None if b == 2 else 1]

    g = fit_grid(f, ("b", "s"), [[1, 2, 3, 4], [1, 2, 3, 4]], [2, 2])
    assert g.polynomial(0).terms == (((1, 1), Fraction(5)),)
    assert set(g.refused) == {1, 2}
    assert "not a polynomial" in g.refused[1]
    assert "missing" in g.refused[2]
    # evaluation off the grid: component 0 exact, the refused ones None
    assert g.evaluate((7, 11)) == [385, None, None]


def test_fit_needs_enough_points():
    with pytest.raises(ValueError, match="needs 4 distinct points"):
        fit_grid(lambda p: [1], ("s",), [[1, 2, 3]], [2])


def test_maximum_keeps_only_the_pieces_that_can_win():
    # three moments: 10*s, s^2 and 5*s; 5*s is never the largest (10*s >= 5*s everywhere)
    from modelmeter.analysis.multifit import maximum

    g = fit_grid(lambda p: [10 * p[0], p[0] ** 2, 5 * p[0]], ("s",), [[1, 2, 3, 4]], [2])
    m = maximum(g, [0, 1, 2])
    assert m.format() == "max(s², 10·s)"
    assert (m.at(s=4), m.at(s=10), m.at(s=20)) == (40, 100, 400)  # 10*4; tie; 20^2
    assert Maximum.from_dict(m.to_dict()) == m
