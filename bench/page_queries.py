"""The queries the Cost and the Quality & latency pages run on one rerun, in page order: timed
as "a page" by bench/analytics_bench.py (local folder) and bench/scale.py (bucket). With
``cache_dir`` the narrow table is the dashboard's (a file there), else in memory."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shadowtutor.cost import budget, spend
from shadowtutor.log import analytics
from shadowtutor.views import quality


def cost_page(
    log: Any, now: datetime, prices: Any, f: analytics.Filters, cache_dir: Any = None
) -> None:
    spend._PROMPTS.clear()
    c = analytics.connect(log, "UTC", cache_dir=cache_dir)
    w = spend.spend_windows(c, now)
    budget.project(now=now, month_to_date=w.month_to_date, daily_rate=w.trailing_7d / 7)
    analytics.filter_options(c)
    analytics.count_pairs(c, f)
    spend.cost_coverage(c, f, prices)
    spend.spend_by_day(c, f)
    spend.spend_heatmap(c, f)
    for dim in spend.DIMENSIONS:
        spend.spend_by(c, f, dim)
    spend.top_prompts(c, f, 20)
    spend.savings_inputs(c, f, {"greeting", "casual"})


def quality_page(log: Any, f: analytics.Filters, cache_dir: Any = None) -> None:
    c = analytics.connect(log, "UTC", cache_dir=cache_dir)
    analytics.filter_options(c)
    analytics.count_pairs(c, f)
    quality.similarity_methods(c, f)
    quality.similarity_by_day(c, f, "lexical", 0.8)
    quality.similarity_histogram(c, f, "lexical")
    for dim in quality.SIM_DIMENSIONS:
        quality.similarity_by(c, f, "lexical", dim, 0.8)
    quality.latency_by_day(c, f)
    quality.student_failures_by_day(c, f)
    quality.side_by_side(c, f, method="lexical")
