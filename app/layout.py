"""Small layout fixes the app applies on every run (our own CSS and script, never content
from a model, a user or the log).

* On a narrow screen (a phone, 390 px) the sidebar is an overlay; Streamlit closes it after a
  click in its own page menu but not after an ``st.page_link``, which our role-filtered menu
  uses. :func:`close_sidebar_on_mobile` closes it once a menu link is clicked.
* At 1,024 px Streamlit's wide layout left 560 px for the page (a 300 px sidebar and 80 px
  of padding each side): metric values read "1,334 …", tables hid their evidence columns.
  :data:`SIDEBAR_PX` narrows the sidebar and :func:`tighten` trims the padding and the metric
  font on screens up to :data:`NARROW_MAX_PX`, so a laptop gets about 740 px.
* The app hides Streamlit's own running indicator (``toolbarMode = "minimal"``), so sections
  sat empty for seconds with no sign of work (issue 27 item 11). :func:`tighten` also draws
  a "Working…" badge and a moving bar at the top of the window while the page's script
  runs, shown only after 300 ms so that quick reruns do not flicker.
* Streamlit's Plotly code is a 4.7 MB script the browser fetches and compiles at the first
  chart of a visit: 2-4 s of the first Home after logging in on a busy 2-core machine (issue
  27 item 11). :func:`warm_charts` draws an empty chart out of sight on the login form, so the
  browser does that while the person types.
* The Review page's judgement and actions sit in a bar that stays in view at the bottom of
  the window (:data:`ACTION_BAR`, a keyed ``st.container``), so mouse users do not scroll on
  every pair.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

MOBILE_MAX_PX = 768  # Streamlit's own breakpoint for the overlay sidebar
SIDEBAR_PX = 232  # the menu's longest label ("Quality & latency") with its icon, not cut
NARROW_MAX_PX = 1280
WORKING_DELAY_MS = 300  # a wait longer than this shows the "Working…" badge
ACTION_BAR = "review-actions"
WARM_CHARTS = "warm-charts"

# Out of sight and out of the layout, but drawn (display: none could skip the chart's code).
_WARM_CSS = f"""<style>
.st-key-{WARM_CHARTS} {{
  position: absolute; left: -10000px; top: 0; width: 40px; height: 40px; overflow: hidden;
}}
</style>"""

_CLOSE_SIDEBAR = f"""<script>
(function () {{
  if (window.__shadowtutorSidebar) return;
  window.__shadowtutorSidebar = true;
  document.addEventListener("click", function (event) {{
    var link = event.target.closest && event.target.closest('[data-testid="stSidebar"] a');
    if (!link || window.innerWidth > {MOBILE_MAX_PX}) return;
    setTimeout(function () {{
      var button = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
      if (button) button.click();
    }}, 60);
  }}, true);
}})();
</script>"""

# The keyed block sits alone in a wrapper of its own height, so the wrapper is what sticks.
_BAR_CSS = f"""<style>
div:has(> .st-key-{ACTION_BAR}) {{
  position: sticky; bottom: 0; z-index: 50;
  background: var(--st-background-color, #ffffff);
  border-top: 1px solid rgba(49, 51, 63, 0.2);
  padding: 0.4rem 0 0.5rem 0;
  box-shadow: 0 -6px 12px -10px rgba(0, 0, 0, 0.35);
}}
/* five score radios in one row at 1,024 px (they wrapped to two) */
.st-key-{ACTION_BAR} [role="radiogroup"] {{ flex-wrap: nowrap; gap: 0 0.6rem; }}
.st-key-{ACTION_BAR} [role="radiogroup"] label {{ margin-right: 0; padding-right: 0; }}
</style>"""


# Streamlit's top padding (6rem) pushed every page down by a header's height again; a
# narrower screen gets narrower margins and metric values that fit their column; a run
# longer than WORKING_DELAY_MS shows that the app is working.
_TIGHTEN = f"""<style>
[data-testid="stMainBlockContainer"] {{ padding-top: 3.5rem; padding-bottom: 3rem; }}
.stApp[data-test-script-state="running"]::before,
.stApp[data-test-script-state="running"]::after {{
  position: fixed; z-index: 1000000; opacity: 0; pointer-events: none;
  animation: st-work-show 0s linear {WORKING_DELAY_MS}ms forwards;
}}
.stApp[data-test-script-state="running"]::before {{
  content: ""; top: 0; left: 0; right: 0; height: 3px;
  background: linear-gradient(90deg, transparent 0%, #2563eb 50%, transparent 100%);
  background-size: 40% 100%; background-repeat: no-repeat;
  animation: st-work-show 0s linear {WORKING_DELAY_MS}ms forwards,
             st-work-slide 1.2s ease-in-out {WORKING_DELAY_MS}ms infinite;
}}
.stApp[data-test-script-state="running"]::after {{
  content: "Working…"; top: 0.7rem; right: 4.5rem; padding: 0.15rem 0.6rem;
  border-radius: 999px; background: #2563eb; color: #ffffff; font-size: 0.8rem;
}}
@keyframes st-work-show {{ to {{ opacity: 1; }} }}
@keyframes st-work-slide {{
  from {{ background-position: -40% 0; }} to {{ background-position: 140% 0; }}
}}
@media (max-width: {NARROW_MAX_PX}px) {{
  [data-testid="stMainBlockContainer"] {{ padding-left: 1.5rem; padding-right: 1.5rem; }}
  [data-testid="stMetricValue"] {{ font-size: 1.7rem; }}
}}
</style>"""


def tighten() -> None:
    st.html(_TIGHTEN)


def close_sidebar_on_mobile() -> None:
    st.html(_CLOSE_SIDEBAR, unsafe_allow_javascript=True)


def action_bar():  # noqa: ANN201
    """The sticky container of the Review page's scores, verdict and buttons."""
    st.html(_BAR_CSS)
    return st.container(key=ACTION_BAR)


def warm_charts() -> None:
    """An empty Plotly chart nobody sees: the browser loads the charts' code before it is
    needed (call it on the login form)."""
    st.html(_WARM_CSS)
    with st.container(key=WARM_CHARTS):
        fig = go.Figure(
            layout={"width": 40, "height": 40, "margin": {"l": 0, "r": 0, "t": 0, "b": 0}}
        )
        st.plotly_chart(fig, config={"staticPlot": True}, width="content", key="warm-chart")
