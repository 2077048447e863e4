"""Issue 26 item 6 on the demo: asking 80/10/10 gives 80/10/10 within one point (the full demo
gave 224/40/24 of 288: its large shared-prompt groups), no conversation in two splits, no
val/test context holding a train target, and the manifest reports both checks."""

from __future__ import annotations

import json
from pathlib import Path

from shadowtutor import db
from shadowtutor.accounts import users
from shadowtutor.config import Settings
from shadowtutor.export import build, jobs
from tests.integration.test_export_tools import check_openai_line


def no_better_move(examples: list[build.Example], asked: tuple[float, ...]) -> None:
    """No single group can change split, keeping val/test free of train targets, and bring
    the counts nearer the asked shares: the split is as asked as the data allow."""
    group_of = build.group_finder(examples)
    holds = build._holds(examples, group_of)
    held_by: dict[str, set[str]] = {}
    for h, sources in holds.items():
        for src in sources:
            held_by.setdefault(src, set()).add(h)
    where = {group_of(e): e.split for e in examples}
    size: dict[str, int] = {}
    for e in examples:
        size[group_of(e)] = size.get(group_of(e), 0) + 1
    counts = {s: sum(e.split == s for e in examples) for s in jobs.SPLITS}
    goal = {s: f * len(examples) for s, f in zip(jobs.SPLITS, asked, strict=True)}
    for g, at in where.items():
        for to in jobs.SPLITS:
            if to == at:
                continue
            if to == "train":
                legal = all(where[h] == "train" for h in held_by.get(g, ()))
            else:
                legal = all(where[src] != "train" for src in holds.get(g, ()))
            before = abs(counts[at] - goal[at]) + abs(counts[to] - goal[to])
            after = abs(counts[at] - size[g] - goal[at]) + abs(counts[to] + size[g] - goal[to])
            assert not (legal and after < before - 1e-9), (g, at, to, counts)


def test_the_demo_is_split_as_near_as_asked_as_its_groups_allow_and_says_so(
    demo_settings: Settings, tmp_path: Path
) -> None:
    """The test demo (600 pairs): 80/10/10 within one point, whole conversations and prompt
    groups in one split, no val/test context holding a train target, and the manifest says
    how near and why."""
    with db.session_scope(demo_settings.db_url) as s:
        admin = users.get_user(session=s, username="admin")
        assert admin is not None
        examples, _ = jobs._plan(s, jobs.ExportFilters(), jobs.ExportOptions())
        result = jobs.run_export(session=s, actor_id=admin.id, export_root=tmp_path)
    n = result.counts["examples"]
    assert n >= 200 and n == len(examples)
    planned = {k: sum(e.split == k for e in examples) for k in jobs.SPLITS}
    assert planned == result.counts["per_split"]  # the plan checked here is what was written
    assert build.leaking(examples) == set()
    no_better_move(examples, (0.8, 0.1, 0.1))
    where: dict[str, set[str]] = {}
    for e in examples:
        where.setdefault(e.conversation, set()).add(e.split)
    assert all(len(v) == 1 for v in where.values())  # never divided
    manifest = json.loads((result.path / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["per_split"] == result.counts["per_split"]
    check = counts["split_check"]
    per = counts["per_split"]
    assert check["asked"] == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert check["got"] == {k: round(v / n, 4) for k, v in per.items()}
    assert check["within_one_point"] == all(
        abs(per[k] / n - check["asked"][k]) <= 0.01 for k in per
    )
    # Issue 26: the demo's greeting and question templates vary (names, cities, months) and
    # the greeting turn before a question is never another example's answer, so its groups
    # are small and 80/10/10 is reached within one point (it was 181/14/17 of 212: one group
    # held 142 examples and its greeting replies sat in the other conversations' contexts).
    # The test demo ends this hour, so its groups vary with it: 30, 51 and 53 of about 287
    # (10-19 %) seen on 7 December; the templated texts gave 142 of 212 and 67 of 205.
    assert check["largest_group"] <= 0.25 * n
    assert check["within_one_point"] and all(
        abs(per[k] / n - want) <= 0.01 for k, want in check["asked"].items()
    )
    group_of = build.group_finder(examples)
    sizes: dict[str, int] = {}
    for e in examples:
        sizes[group_of(e)] = sizes.get(group_of(e), 0) + 1
    assert check["expected"] and check["largest_group"] == max(sizes.values())
    print("test demo split:", per, "largest group", check["largest_group"], counts["per_kind"])
    for split in jobs.SPLITS:  # the demo's tools and JSON pairs too: lines OpenAI takes
        for raw in (result.path / f"sft_{split}.jsonl").read_text().splitlines():
            check_openai_line(json.loads(raw))
    containment = counts["containment_check"]
    assert containment["val_test_conversations_holding_a_train_target"] == 0
    assert containment["groups_moved_to_train"] >= 0


def _example(i: int, conversation: str, language: str, question: str) -> build.Example:
    prompt = [{"role": "user", "content": question}]
    return build.Example(
        pair_id=f"p{i:04d}", conversation=conversation, language=language, category="chat",
        source="live", ts="", prompt=prompt, target=f"answer {i}", target_source="teacher",
        teacher=f"answer {i}", student="", student_score=None, student_worse=False, tags=[],
    )  # fmt: skip


def test_a_large_shared_prompt_group_in_one_language_does_not_skew_the_whole_split() -> None:
    """The full demo's shape (224/40/24 of 288): in one language most conversations share a
    prompt (one group, all train), so balancing each language alone left the whole export
    85/7.5/7.5; whole groups of the other languages make it up."""
    examples = []
    for i in range(90):  # Italian: 90 conversations opening with the same greeting
        examples.append(_example(i, f"it-{i}", "it", "Ciao, come stai?"))
    for i in range(90, 100):
        examples.append(_example(i, f"it-{i}", "it", f"domanda {i}"))
    for i in range(100, 200):
        lang = ("en", "id")[i % 2]
        examples.append(_example(i, f"{lang}-{i}", lang, f"question {i}"))
    build.split_examples(examples)
    per = {s: sum(e.split == s for e in examples) for s in build.SPLITS}
    assert per == {"train": 160, "val": 20, "test": 20}
    report = build.BuildReport()
    build.split_examples(examples, report=report)  # again: the same split, its report
    assert {s: sum(e.split == s for e in examples) for s in build.SPLITS} == per
    check = build.split_check(examples, (0.8, 0.1, 0.1), report.largest_group)
    assert check == build.split_check(examples, (0.8, 0.1, 0.1))  # the groups found again
    assert check["within_one_point"] and check["expected"] and check["largest_group"] == 90
    assert build.leaking(examples) == set()
