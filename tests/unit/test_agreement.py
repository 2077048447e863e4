"""Agreement figures against hand-computed and published examples."""

from __future__ import annotations

import pytest

from shadowtutor.review.agreement import (
    Rating,
    coincidences,
    disagreements,
    krippendorff_alpha,
    pair_agreement,
    score_alpha,
)

# Hand-computed example: four items, two reviewers.
#   units (1,1) (2,3) (3,3) (1,2)
#   coincidences: o11=2, o23=o32=1, o33=2, o12=o21=1 -> n1=3, n2=2, n3=3, n=8
#   ordinal delta^2: d(1,2)=(n1+n2-(n1+n2)/2)^2=2.5^2=6.25, d(2,3)=2.5^2=6.25,
#                    d(1,3)=(n1+n2+n3-(n1+n3)/2)^2=5^2=25
#   observed  sum o*d2 = 4 * 6.25 = 25
#   expected  sum n_c*n_k*d2 = 2*(3*2*6.25 + 2*3*6.25 + 3*3*25) = 600
#   alpha = 1 - (n-1)*25/600 = 1 - 175/600 = 17/24
#   nominal: observed 4, expected 2*(6+6+9)=42, alpha = 1 - 7*4/42 = 1/3
HAND = [(1, 1), (2, 3), (3, 3), (1, 2)]

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 coders, 12 units,
# published alphas nominal .743, ordinal .815, interval .849.
N = None
_CODERS = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
    [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
]
PUBLISHED = list(zip(*_CODERS, strict=True))


@pytest.mark.parametrize(
    ("units", "level", "expected", "tol"),
    [
        (HAND, "ordinal", 17 / 24, 1e-12),
        (HAND, "nominal", 1 / 3, 1e-12),
        (PUBLISHED, "nominal", 0.743, 0.0005),
        (PUBLISHED, "ordinal", 0.815, 0.0005),
        (PUBLISHED, "interval", 0.849, 0.0005),
        ([(2, 2), (4, 4), (5, 5)], "ordinal", 1.0, 1e-12),  # perfect agreement
        # Two values, every unit split: maximal disagreement, alpha below zero.
        ([(1, 2), (2, 1)], "nominal", 1 - 3 * 4 / 8, 1e-12),
    ],
)
def test_alpha_matches_hand_and_published_values(units, level, expected, tol) -> None:
    assert krippendorff_alpha(units, level) == pytest.approx(expected, abs=tol)


@pytest.mark.parametrize(
    "units",
    [
        [],  # nothing
        [(3,), (4, None)],  # no unit with two values
        [(3, 3), (3, 3)],  # only one value used: expected disagreement is zero
    ],
)
def test_alpha_undefined(units) -> None:
    assert krippendorff_alpha(units) is None


def test_coincidences_weight_units_by_pairable_values() -> None:
    o = coincidences([(1, 1, 2)])  # m=3: each ordered pair counts 1/2
    assert o == {(1, 1): 1.0, (1, 2): 1.0, (2, 1): 1.0}


def _r(item: int, who: str, score: int | None, decision: str) -> Rating:
    return Rating(item, who, score, decision, pair_id=f"p{item}")


RATINGS = [
    _r(1, "ana", 5, "approve"),
    _r(1, "ben", 4, "approve"),
    _r(2, "ana", 2, "reject"),
    _r(2, "ben", 5, "approve"),  # decision and score disagree
    _r(3, "ana", 1, "reject"),
    _r(3, "ben", 3, "reject"),  # scores 2 apart
    _r(3, "cy", None, "skip"),  # skips never count
    _r(4, "ana", 4, "approve"),  # single review
]


def test_pair_agreement_and_kappa() -> None:
    (pair,) = pair_agreement(RATINGS)
    assert (pair.reviewer_a, pair.reviewer_b, pair.items, pair.agreed) == ("ana", "ben", 3, 2)
    assert pair.percent == pytest.approx(2 / 3)
    # ana: approve, reject, reject; ben: approve, approve, reject
    # p_o = 2/3; p_e = (1/3)(2/3) + (2/3)(1/3) = 4/9; kappa = (2/3-4/9)/(5/9) = 0.4
    assert pair.kappa == pytest.approx(0.4)


def test_disagreements_list_items_with_reasons() -> None:
    found = disagreements(RATINGS)
    assert [d.item_id for d in found] == [2, 3]  # widest score gap first
    assert found[0].reasons == ("approve vs reject", "scores 2 to 5")
    assert found[1].reasons == ("scores 1 to 3",)
    assert found[1].decisions == {"ana": "reject", "ben": "reject"}


def test_score_alpha_uses_items_with_two_scores() -> None:
    expected = krippendorff_alpha([(5, 4), (2, 5), (1, 3)], "ordinal")
    assert score_alpha(RATINGS) == pytest.approx(expected)
