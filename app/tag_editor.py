"""The tag taxonomy editor (admins, on the Review queue page): list, add, rename,
deactivate, activate and delete (unused) tags."""

from __future__ import annotations

import streamlit as st

from shadowtutor import db
from shadowtutor.app.text import inert
from shadowtutor.errors import ShadowTutorError
from shadowtutor.review import taxonomy


def show(url: str, actor_id: int) -> None:
    with db.session_scope(url) as s:
        tags = taxonomy.list_tags(session=s, active_only=False)
    if msg := st.session_state.pop("tag_message", None):
        st.success(inert(msg))
    if st.button("Add the default tags that are missing", key="seed_tags"):
        with db.session_scope(url) as s:
            st.session_state["tag_message"] = (
                f"Added {taxonomy.seed_default_tags(session=s, actor_id=actor_id)} default tags."
            )
        st.rerun()
    st.dataframe(
        [
            {
                "id": t.id,
                "name": t.name,
                "kind": t.kind,
                "active": t.active,
                "description": t.description,
            }
            for t in tags
        ],
        hide_index=True,
    )
    add_col, edit_col = st.columns(2)
    with add_col, st.form("add_tag", clear_on_submit=True):
        st.markdown("**New tag**")
        name = st.text_input("Name", key="tag_name")
        kind = st.selectbox("Kind", taxonomy.TAG_KINDS, key="tag_kind")
        description = st.text_input("Description", key="tag_description")
        if st.form_submit_button("Add tag"):
            try:
                with db.session_scope(url) as s:
                    taxonomy.add_tag(
                        session=s, name=name, kind=kind, description=description, actor_id=actor_id
                    )
                st.rerun()
            except ShadowTutorError as exc:
                st.error(inert(exc))
    if tags:
        with edit_col, st.form("edit_tag"):
            st.markdown("**Change a tag**")
            by_id = {t.id: t for t in tags}
            tag_id = st.selectbox("Tag", list(by_id), format_func=lambda i: by_id[i].name)
            action = st.radio(
                "Action",
                ["rename", "deactivate", "activate", "delete"],
                horizontal=True,
                help="Deactivated tags are no longer offered; deleting works only for unused tags.",
            )
            new_name = st.text_input("New name (for rename)")
            if st.form_submit_button("Apply"):
                try:
                    with db.session_scope(url) as s:
                        if action == "delete":
                            taxonomy.delete_tag(session=s, tag_id=tag_id, actor_id=actor_id)
                        elif action == "rename":
                            taxonomy.update_tag(
                                session=s, tag_id=tag_id, name=new_name, actor_id=actor_id
                            )
                        else:
                            taxonomy.update_tag(
                                session=s,
                                tag_id=tag_id,
                                active=action == "activate",
                                actor_id=actor_id,
                            )
                    st.rerun()
                except ShadowTutorError as exc:
                    st.error(inert(exc))
