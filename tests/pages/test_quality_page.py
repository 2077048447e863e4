"""The Quality & latency page in AppTest as manager, admin and reviewer, on demo data and on
an empty log."""

from __future__ import annotations

import pytest

from shadowtutor.config import Settings
from shadowtutor.views import display
from tests.support.apputil import page_as, texts

PAGE = "pages/quality.py"


@pytest.mark.parametrize("role", ["manager", "admin", "reviewer"])
def test_quality_page_on_demo_data(demo_settings: Settings, role: str) -> None:
    at = page_as(PAGE, demo_settings.db_url, role).run()
    assert not at.exception, at.exception
    # histogram, trend, 2 breakdowns, latency, failures, the student by kind of request,
    # users' feedback by who served
    assert len(at.get("plotly_chart")) == 8
    assert "Users' feedback" in [h.value for h in at.subheader]
    # the demo's canary: the student served greeting and casual, compared like with like
    assert "Categories compared (those the student served): casual, greeting" in [
        t.value for t in at.text
    ]
    table = at.dataframe[0].value
    assert table["model"].tolist() == ["teacher", "student"]
    assert int(table["requests"].iloc[0].replace(",", "")) > 0  # shown with separators
    assert (table["mean_review_score"] != "—").all()  # the demo has reviews
    # Issue 14 item 10: no raw None in the table; the teacher is the similarity's reference.
    assert not display.still_raw(table)
    assert table["mean_similarity"].tolist()[0] == "reference"
    assert not {"None", "nan"} & {str(v) for v in table.to_numpy().ravel()}
    assert "current reviews" in " ".join(c.value for c in at.caption)
    by_kind = at.dataframe[1].value.set_index("Kind")
    assert by_kind.index.tolist() == ["plain", "tools", "json_schema"]
    assert by_kind.loc["tools", "Calls agree"].endswith("%")  # some disagree
    assert by_kind.loc["json_schema", "Valid JSON"].endswith("%")
    assert by_kind.loc["plain", "Calls agree"] == "-"


def test_quality_by_kind_shows_unsupported_requests_apart(demo_settings: Settings) -> None:
    at = page_as(PAGE, demo_settings.db_url, "manager").run()
    at.selectbox(key="quality-period").select("All")
    at.selectbox(key="quality-student").select("qwen").run()  # its server refused tools
    assert not at.exception, at.exception
    by_kind = at.dataframe[1].value.set_index("Kind")
    assert int(by_kind.loc["tools", "Unsupported"].replace(",", "")) > 0
    assert by_kind.loc["tools", "Failed"] == "0"  # unsupported is not a failure


def test_manager_changes_threshold_and_filters(demo_settings: Settings) -> None:
    at = page_as(PAGE, demo_settings.db_url, "manager").run()
    share_high = next(m.value for m in at.metric if m.label.startswith("Pairs with similarity"))
    at.slider(key="quality-threshold").set_value(0.3).run()
    assert not at.exception, at.exception
    share_low = next(m.value for m in at.metric if m.label.startswith("Pairs with similarity"))
    assert float(share_low.rstrip("%")) >= float(share_high.rstrip("%"))
    at.multiselect(key="quality-languages").select("en").run()
    at.selectbox(key="quality-period").select("All").run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 8


def test_empty_log_says_so(migrated: Settings) -> None:
    at = page_as(PAGE, migrated.db_url, "reviewer").run()
    assert not at.exception, at.exception
    assert "shadow log is empty" in texts(at.info)
    assert not at.get("plotly_chart")
