"""The Export page's lines on the split and the kinds of what it writes (from the export's own
counts: the preview is the export's computation, so these are the files' numbers)."""

from __future__ import annotations

from typing import Any

import streamlit as st

KIND_NAMES = {
    "plain": "plain chat",
    "tools": "tool calls (with their tools)",
    "json_object": "JSON",
    "json_schema": "JSON with a schema",
    "images": "with images",
}


def show(counts: dict[str, Any]) -> None:
    """The split asked and got, the containment check, and the request kinds written."""
    check = counts.get("split_check") or {}
    got, asked = check.get("got") or {}, check.get("asked") or {}
    if got and asked:
        shares = " / ".join(f"{100 * got[k]:.1f}" for k in ("train", "val", "test"))
        want = " / ".join(f"{100 * asked[k]:g}" for k in ("train", "val", "test"))
        if check.get("within_one_point") or not counts.get("examples"):
            st.caption(f"Split {shares} % (asked {want} %, within one point).")
        elif check.get("expected"):
            st.warning(
                f"The split comes out at {shares} %, not the asked {want} %: whole "
                f"conversations stay together and one group of {check['largest_group']:,} "
                "examples (conversations joined by a prompt they share) cannot be divided, "
                "and no val/test example may hold a train answer in its context. This is as "
                "near as those rules allow."
            )
        else:
            st.caption(
                f"Split {shares} % (asked {want} %): under 200 examples, whole conversations "
                "cannot always reach the asked shares."
            )
    containment = counts.get("containment_check") or {}
    if containment:
        st.caption(
            "No val/test example holds a train answer in its context "
            f"({containment.get('groups_moved_to_train', 0):,} groups moved to train for it; "
            f"left: {containment.get('val_test_conversations_holding_a_train_target', 0):,})."
        )
    kinds = {k: sum(v.values()) for k, v in (counts.get("per_kind") or {}).items()}
    if any(k != "plain" for k in kinds):
        st.caption(
            "Examples by request kind: "
            + ", ".join(f"{n:,} {KIND_NAMES.get(k, 'other')}" for k, n in sorted(kinds.items()))
            + (
                f"; {counts['tools_without_definitions']:,} tool-call examples without their "
                "tool definitions (logged before the record kept them)"
                if counts.get("tools_without_definitions")
                else ""
            )
            + "."
        )
