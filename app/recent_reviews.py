"""'My recent reviews' on the Review page: the reviewer's current reviews, and changing one
(a new version is saved; the earlier one is kept)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from shadowtutor import db
from shadowtutor.app import review_ui
from shadowtutor.app.text import inert
from shadowtutor.errors import ShadowTutorError
from shadowtutor.review import workflow


def show(*, user_id: int, url: str, tag_names: list[str], tz: Any) -> None:
    with db.session_scope(url) as s:
        mine = workflow.recent_reviews(session=s, reviewer_id=user_id, limit=30)
    if not mine:
        st.info("You have no reviews yet.")
        return
    st.dataframe(review_ui.recent_rows(mine, tz), hide_index=True)
    by_id = {r.id: (r, i) for r, i in mine}
    if pending := st.session_state.pop("review_edit_pending", None):
        st.session_state["review_edit_id"] = pending
        st.success(st.session_state.pop("review_edit_msg", "Saved."))
    chosen = st.selectbox(
        "Change a review",
        list(by_id),
        key="review_edit_id",
        format_func=lambda rid: f"#{rid} · {by_id[rid][1].pair_id[:12]} · {by_id[rid][0].decision}",
    )
    old, item = by_id[chosen]
    slots = review_ui.answer_slots(item, blind=False, swap=False)
    with st.expander("The pair", expanded=False):
        review_ui.show_pair(item, slots, reveal=True)
    prefix = f"e{old.id}_"
    values = review_ui.judgement_form(
        prefix, tag_names, slots, initial=review_ui.from_review(old), keys=False
    )
    decision = st.radio(
        "Decision",
        workflow.DECISIONS,
        index=workflow.DECISIONS.index(old.decision),
        horizontal=True,
        key=f"{prefix}decision",
    )
    if st.button("Save changes", type="primary", key=f"{prefix}save"):
        try:
            with db.session_scope(url) as s:
                new = workflow.edit_review(
                    session=s,
                    review_id=old.id,
                    reviewer_id=user_id,
                    judgement=review_ui.to_judgement(
                        values, slots, decision, old.seconds_spent, old.blind
                    ),
                )
        except ShadowTutorError as exc:
            st.error(inert(exc))
        else:
            st.session_state["review_edit_pending"] = new.id
            st.session_state["review_edit_msg"] = (
                f"Saved as review #{new.id}; the earlier version #{old.id} is kept."
            )
            st.rerun()
