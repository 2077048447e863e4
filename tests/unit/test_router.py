"""The router's pure parts: the request path's scorer is scikit-learn's model exactly, the
stored form round-trips (and is no pickle), and the threshold's fixed sequence."""

from __future__ import annotations

import random

import pytest

from shadowtutor.router import features, model, threshold
from shadowtutor.router.features import Scorer

WORDS = "refund visa insurance bag date package price hotel beach ciao grazie halo".split()


def _messages(
    rng: random.Random, n_words: int = 12, words: list[str] = WORDS
) -> list[dict[str, str]]:
    text = " ".join(rng.choice(words) for _ in range(n_words))
    return [{"role": "system", "content": "be nice"}, {"role": "user", "content": text}]


def _examples(seed: int = 0, n: int = 300) -> list[model.Example]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        hard = rng.random() < 0.5
        msgs = _messages(rng, 6, WORDS[:3] if hard else WORDS[3:])
        text = features.request_text(msgs, category="business")
        out.append(model.Example(text, rng.random() < (0.3 if hard else 0.95)))
    return out


def test_the_request_path_scorer_gives_scikit_learns_probability() -> None:
    examples = _examples()
    scorer = model.fit(examples)
    rng = random.Random(1)
    texts = [
        features.request_text(_messages(rng, rng.randrange(1, 40)), category=c, kind="plain")
        for c in ("business", "greeting", None, "Small-Talk", "café au lait")
        for _ in range(30)
    ] + ["", "Ünïcödé wörds ÀÉ 東京 straße İstanbul", "a b c"]
    expected = model.sklearn_scores(scorer, texts)
    for text, want in zip(texts, expected, strict=True):
        assert scorer.score_text(text) == pytest.approx(want, abs=1e-9)
    # and the request path's tokens (never joined into a text) score the same
    for c in ("business", "Small-Talk", "café au lait"):
        msgs = _messages(rng, 20)
        text = features.request_text(msgs, category=c, kind="json_schema", tools=3)
        [want] = model.sklearn_scores(scorer, [text])
        assert scorer.score(msgs, category=c, kind="json_schema", tools=3) == pytest.approx(
            want, abs=1e-9
        )


def test_small_hash_spaces_collide_and_still_agree() -> None:
    # 2**4 columns: tokens collide, signs cancel; the scorer must do what scikit-learn does
    scorer = model.fit(_examples(2), n_features=16)
    texts = [e.text for e in _examples(3, 50)]
    for text, want in zip(texts, model.sklearn_scores(scorer, texts), strict=True):
        assert scorer.score_text(text) == pytest.approx(want, abs=1e-9)


def test_the_router_learns_which_requests_are_hard() -> None:
    scorer = model.fit(_examples(n=600))
    easy = [{"role": "user", "content": "bag date package price hotel"}]
    hard = [{"role": "user", "content": "refund visa insurance"}]
    assert (
        scorer.score(easy, category="business")
        > 0.8
        > 0.5
        > scorer.score(hard, category="business")
    )


def test_the_stored_form_round_trips_and_is_not_a_pickle() -> None:
    scorer = model.fit(_examples())
    data = model.dumps(scorer)
    assert b"pickle" not in data and data[:2] == b"PK"  # a zip of plain arrays
    back = model.loads(data)
    assert back == Scorer(dict(scorer.weights), scorer.intercept, scorer.n_features)
    with pytest.raises(model.RouterModelError, match="cannot be used"):
        model.loads(b"not a model")


def test_a_model_made_with_other_features_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    data = model.dumps(model.fit(_examples()))
    monkeypatch.setattr(model, "FEATURES_VERSION", features.FEATURES_VERSION + 1)
    with pytest.raises(model.RouterModelError, match="features version 1, .* version 2: train"):
        model.loads(data)


def test_one_label_only_is_a_clear_error() -> None:
    with pytest.raises(model.RouterModelError, match="all acceptable"):
        model.fit([model.Example("a b", True), model.Example("c d", True)])


def test_request_text_markers() -> None:
    msgs = [
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": "hi"},
        {"role": "user", "content": [{"type": "text", "text": "the refund please"}]},
    ]
    text = features.request_text(msgs, category="business", kind="tools", tools=2)
    assert "hello there the refund please" in text
    for marker in ("zzcat_business", "zzkind_tools", "zztools_2", "zzdepth_3", "zzlen_2"):
        assert marker in text
    long = [{"role": "user", "content": "x" * 10_000}]
    assert len(features.request_text(long, category=None)) < features.TEXT_CHARS + 200


@pytest.mark.parametrize(
    ("k", "n", "floor", "alpha", "rejects"),
    [
        (95, 100, 0.85, 0.05, True),
        (88, 100, 0.85, 0.05, False),
        (10, 10, 0.7, 0.05, True),  # 0.7**10 = 0.028
        (10, 10, 0.8, 0.05, False),  # 0.8**10 = 0.107
        (0, 0, 0.5, 0.05, False),
    ],
)
def test_binomial_p_value_and_the_clopper_pearson_bound_agree(
    k: int, n: int, floor: float, alpha: float, rejects: bool
) -> None:
    assert (threshold.p_value(k, n, floor) <= alpha) is rejects
    assert (threshold.lower_bound(k, n, alpha) >= floor) is rejects
    if n == k == 10:
        assert threshold.p_value(k, n, floor) == pytest.approx(floor**10)


def test_the_fixed_sequence_stops_at_the_first_threshold_that_fails() -> None:
    # held-out pairs: the top ones all acceptable, then a bad band, then good ones again
    scores = [0.9] * 40 + [0.7] * 40 + [0.5] * 200
    labels = [True] * 40 + [False] * 40 + [True] * 200
    choice = threshold.choose("c", scores, labels, [0.9, 0.7, 0.5], floor=0.8, alpha=0.05)
    assert [p.n for p in choice.points] == [40, 80, 280]
    # 0.7 fails (40 of 80), so 0.5 is never reached although its rate (240/280) is above 0.8
    assert choice.threshold == 0.9 and choice.share == pytest.approx(40 / 280)
    assert choice.points[2].bound > 0.8 > choice.points[2].guaranteed
    assert threshold.Choice.from_dict(choice.as_dict()) == choice


def test_the_grid_goes_from_high_to_low_and_ends_serving_everything() -> None:
    g = threshold.grid([i / 100 for i in range(100)])
    assert g == sorted(g, reverse=True) and g[-1] == 0.0
    assert g[0] == pytest.approx(0.80)  # the student would take the top 20 %
    assert threshold.grid([]) == [0.0]
