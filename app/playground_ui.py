"""Widgets of the Playground page: one turn (the prompt, the answers side by side with their
figures, similarity) and its "Save as pair" action. Model output is shown with ``st.text`` only."""

from __future__ import annotations

from typing import Any

import streamlit as st

from shadowtutor import db
from shadowtutor.app.auth import CurrentUser
from shadowtutor.app.text import inert, md
from shadowtutor.backends.answer import Answer
from shadowtutor.config import Settings
from shadowtutor.errors import ShadowTutorError
from shadowtutor.playground import chat


def show_answer(col: Any, who: str, ans: Answer) -> None:
    col.text(f"{who} · {ans.model}")
    if ans.error:
        col.error(ans.error)
    else:
        col.text(ans.text or "(empty answer)")
        col.caption(ans.figures())


def show_turn(conversation: chat.Chat, i: int, *, user: CurrentUser, settings: Settings) -> None:
    turn = conversation.turns[i]
    with st.chat_message("user"):
        st.text(turn.prompt)
    with st.chat_message("assistant"):
        answers = [("Student", turn.student)]
        if turn.teacher:
            answers.append(("Teacher", turn.teacher))
        for col, (who, ans) in zip(st.columns(len(answers)), answers, strict=True):
            show_answer(col, who, ans)
        if turn.similarity is not None:
            st.caption(f"Similarity ({md(turn.similarity_method)}): {turn.similarity:.3f}")
        elif turn.similarity_error:
            st.warning(f"Similarity not computed: {md(turn.similarity_error)}")
        if (why := chat.unsavable(turn)) is not None:
            st.caption(f"Not savable as a pair: {inert(why)}.")
            return
        left, right = st.columns([1, 3])
        queue = right.checkbox("Also put it in the review queue", key=f"pg_queue_{i}")
        done = turn.saved_id is not None and (turn.queued or not queue)
        if left.button("Save as pair", key=f"pg_save_{i}", disabled=done):
            save(conversation, i, queue=queue, user=user, settings=settings)
        elif turn.saved_id:
            st.caption(f"Saved as pair {turn.saved_id}" + (", queued" if turn.queued else ""))


def save(
    conversation: chat.Chat, i: int, *, queue: bool, user: CurrentUser, settings: Settings
) -> None:
    """Write turn ``i`` to the log (and the queue when asked) as the logged-in user, whose
    account the library checks in the database, then rerun with a confirmation."""
    try:
        with db.session_scope(settings.db_url) as session:
            result = chat.save_pair(
                conversation, i, session=session, actor_id=user.id, log_dir=settings.log_path,
                teacher_model=settings.teacher_model, queue=queue,
                required_reviews=settings.reviews_per_item,
            )  # fmt: skip
    except ShadowTutorError as exc:
        st.error(inert(exc))
        return
    st.session_state["pg_flash"] = (
        f"Saved turn {i + 1} as pair {result.pair_id} in the shadow log (source playground)"
        + (", queued for review" if result.queued else "")
    )
    st.rerun()
