"""Review: work through the queue pair by pair (keyboard first), and change recent reviews."""

from __future__ import annotations

import time
from zoneinfo import ZoneInfo

import streamlit as st

from shadowtutor import db
from shadowtutor.app import auth, deps, layout, recent_reviews, review_ui, review_window
from shadowtutor.app.text import inert
from shadowtutor.errors import ShadowTutorError
from shadowtutor.review import taxonomy, workflow

user = auth.guard("review")
settings = deps.settings()
url = settings.db_url
blind = settings.review_blind

st.title("Review")
view = st.radio(
    "Show",
    ["Queue", "My recent reviews"],
    horizontal=True,
    key="review_view",
    label_visibility="collapsed",
)

try:
    with db.session_scope(url) as s:
        tag_names = [t.name for t in taxonomy.list_tags(session=s)]
    st.session_state["review_tag_names"] = tag_names
except db.DatabaseError:  # unreachable: the last tags, so the form and what was typed stay
    if "review_tag_names" not in st.session_state:
        raise
    tag_names = st.session_state["review_tag_names"]


def current_item() -> workflow.ReviewItem | None:
    """The item this reviewer holds (claim renewed), else the next one claimed. While the
    database is unreachable, the item already shown stays (its submit then says it was not
    saved, and the same click saves it once the database is back)."""
    try:
        item = _claimed_item()
    except db.DatabaseError:
        shown = st.session_state.get("review_item")
        if shown is None or shown.id != st.session_state.get("review_item_id"):
            raise
        return shown
    st.session_state["review_item"] = item
    return item


def _claimed_item() -> workflow.ReviewItem | None:
    with db.session_scope(url) as s:
        held = st.session_state.get("review_item_id")
        item = held and workflow.claim_item(
            session=s, item_id=held, reviewer_id=user.id, claim_minutes=settings.claim_minutes
        )
        if held and item is None:
            st.warning("Your claim on the previous pair lapsed or it was finished; moved on.")
        item = item or workflow.claim_next(
            session=s,
            reviewer_id=user.id,
            claim_minutes=settings.claim_minutes,
            prefer_since=review_window.prefer_since(windows),
        )
    if item is not None and item.id != held:
        st.session_state.update(review_item_id=item.id, review_started=time.monotonic())
    return item


def submit(item_id: int, judgement: workflow.Judgement) -> workflow.Review | None:
    try:  # submit_review checks the account's role itself (review.submit)
        with db.session_scope(url) as s:
            return workflow.submit_review(
                session=s, item_id=item_id, reviewer_id=user.id, judgement=judgement
            )
    except ShadowTutorError as exc:
        st.error(f"Your review was not saved: {inert(exc)}. What you entered is kept below.")
        return None


tz = ZoneInfo(settings.timezone)
if view == "Queue":
    windows = review_window.current()
    if last := st.session_state.pop("review_last", None):
        st.success(inert(last))
    item = current_item()
    if item is None:
        st.info(
            "Nothing to review: the queue is empty or you have reviewed every open pair. "
            "An admin fills it on the Review queue page or with `shadowtutor review enqueue`."
        )
        st.stop()
    swap = workflow.blind_order(item.id, user.id)
    slots = review_ui.answer_slots(item, blind=blind, swap=swap)
    prefix = f"q{item.id}_"
    review_ui.show_header(
        item,
        tz=tz,
        note=f"Held for you for {settings.claim_minutes:g} minutes after each action."
        + (" Blind review: the models are revealed after you submit." if blind else ""),
    )
    if late := review_window.outside(item, windows, tz):
        st.warning(inert(late))  # names a student from the log
    review_ui.show_pair(item, slots, reveal=not blind)
    bar = layout.action_bar()  # scores, verdict and buttons stay in view at the bottom
    bar.caption("Your judgement (tags, note and correction below the bar)")
    values = review_ui.judgement_form(prefix, tag_names, slots, bar=bar)
    decision = review_ui.decision_buttons(prefix, bar=bar)
    review_ui.bind_keys(prefix)
    if decision:
        seconds = round(
            time.monotonic() - st.session_state.get("review_started", time.monotonic()), 1
        )
        if decision != "skip" and blind and None in (values["left"], values["right"]):
            st.error("Score both answers (A and B) before approving or rejecting.")
        elif saved := submit(
            item.id, review_ui.to_judgement(values, slots, decision, seconds, blind)
        ):
            text = f"Saved: {decision}" + (
                f", student score {saved.student_score}" if saved.student_score else ""
            )
            if blind:
                text += " · Revealed: " + review_ui.reveal_text(slots)
            st.session_state["review_last"] = text
            st.session_state.pop("review_item_id", None)
            st.rerun()
else:
    recent_reviews.show(user_id=user.id, url=url, tag_names=tag_names, tz=tz)
