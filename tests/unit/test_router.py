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


# --- the cascade ------------------------------------------------------------------------------


def test_the_validators_scorer_reads_the_answer_as_scikit_learn_does() -> None:
    rng = random.Random(4)
    examples, answers = [], []
    for _ in range(200):
        ok = rng.random() < 0.7
        msgs = _messages(rng, 6)
        answer = {"response": "Sure, done." if ok else "Sorry, I cannot.", "finish_reason": "stop"}
        text = features.validator_text(msgs, answer, category="business")
        examples.append(model.Example(text, ok))
        answers.append((msgs, answer))
    validator = model.fit(examples)
    for msgs, answer in answers[:20] + [(_messages(rng), {"response": "x " * 3000})]:
        [want] = model.sklearn_scores(
            validator, [features.validator_text(msgs, answer, category="business")]
        )
        got = validator.score_answer(msgs, answer, category="business")
        assert got == pytest.approx(want, abs=1e-9)
    sure = validator.score_answer(answers[0][0], {"response": "Sure, done."}, category="business")
    sorry = validator.score_answer(
        answers[0][0], {"response": "Sorry, I cannot."}, category="business"
    )
    assert sure > 0.8 > 0.3 > sorry  # it learned the answers, not the requests
    # the answer's words are other columns than the request's
    assert "zzans_sorry" in features.answer_tokens({"response": "Sorry"})
    assert "zzaempty" in features.answer_tokens({"response": " "})


def test_the_stored_form_keeps_the_validator_beside_the_router() -> None:
    router = model.fit(_examples(5))
    validator = model.fit(_examples(6))
    both = model.loads_both(model.dumps(router, validator))
    assert both[0] == router and both[1] == validator
    assert model.loads_both(model.dumps(router)) == (router, None)  # an older version: none


def test_the_cascade_path_is_the_training_frontier_from_small_to_large() -> None:
    rng = random.Random(8)
    r = [rng.random() for _ in range(400)]
    v: list[float | None] = [rng.random() for _ in range(400)]
    y = [rng.random() < 0.4 + 0.3 * a + 0.3 * (b or 0) for a, b in zip(r, v, strict=True)]
    w = [1.0] * 400
    grid = threshold.grid(r)
    path = threshold.cascade_path(
        r, v, y, w, router_grid=grid, validator_grid=threshold.grid([b for b in v if b]),
        start=0.2, max_sent_back=0.3,
    )  # fmt: skip
    assert len(path) > 3

    def measured(tr: float, tv: float) -> tuple[float, float, float]:
        tried = [(b, c) for a, b, c in zip(r, v, y, strict=True) if a >= tr]
        served = [c for b, c in tried if b is not None and b >= tv]
        return len(served) / 400, sum(served) / len(served), (len(tried) - len(served)) / 400

    shown = [measured(*p) for p in path]
    shares, rates = [s[0] for s in shown], [s[1] for s in shown]
    assert shares == sorted(shares) and rates == sorted(rates, reverse=True)
    assert all(s >= 0.2 and back <= 0.3 for s, _r, back in shown)
    # nothing the grids offer serves more at a better rate than a point of the path
    for tr in grid:
        for tv in threshold.grid([b for b in v if b]):
            share, rate, back = measured(tr, tv) if any(a >= tr for a in r) else (0, 0, 0)
            if share >= 0.2 and back <= 0.3:
                assert any(s >= share - 1e-9 and q >= rate - 1e-9 for s, q, _b in shown)


def test_the_cascade_sequence_stops_at_the_first_point_that_fails() -> None:
    # three points: the first two certified, the third not, the fourth would be but is never
    # reached (fixed-sequence testing stops at the first failure)
    r = [1.0] * 100 + [0.5] * 100 + [0.2] * 100
    v: list[float | None] = [1.0] * 300
    y = [True] * 100 + [True] * 95 + [False] * 5 + [False] * 100
    path = [(0.9, 0.0), (0.4, 0.0), (0.1, 0.0), (0.9, 0.5)]
    choice = threshold.choose_cascade("c", r, v, y, path, floor=0.9, alpha=0.05)
    assert [p.router for p in choice.tested] == [0.9, 0.4, 0.1]
    assert choice.certified == 2
    assert choice.chosen is not None and choice.chosen.router == 0.4
    assert choice.chosen.share == pytest.approx(2 / 3)
    # an answer the student did not give (None) is never served: it counts as sent back
    v2: list[float | None] = [None] * 50 + [1.0] * 250
    again = threshold.choose_cascade("c", r, v2, y, path[:1], floor=0.9, alpha=0.05)
    assert again.tested[0].n == 50 and again.tested[0].sent_back == pytest.approx(50 / 300)
    back = threshold.CascadeChoice.from_dict("c", choice.as_dict())
    assert back == choice
