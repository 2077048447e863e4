"""Turning reviewed pairs into training examples and file bytes (pure; no database).

Used by :mod:`shadowtutor.export.jobs`: build examples (chat rules, target answer, PII
scrubbing, drops),
assign the split by conversation, render SFT / preference JSONL and CSV. Every function here
is deterministic: the same input gives the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any

from shadowtutor.export import pii
from shadowtutor.log import schema

if TYPE_CHECKING:
    from shadowtutor.export.jobs import Candidate, ExportOptions

SPLITS = ("train", "val", "test")
CSV_COLUMNS = (
    "split", "pair_id", "conversation_id", "ts", "language", "category", "source", "prompt",
    "target", "target_source", "teacher_answer", "student_answer", "student_score",
    "student_worse", "tags",
)  # fmt: skip


# --- examples --------------------------------------------------------------------------


@dataclass
class Example:
    pair_id: str
    conversation: str  # conversation id, else the pair id
    language: str
    category: str
    source: str
    ts: str
    prompt: list[dict[str, str]]  # system (optional), then user/assistant turns ending on user
    target: str
    target_source: str  # corrected | student | teacher
    teacher: str
    student: str
    student_score: float | None
    student_worse: bool
    tags: list[str]
    split: str = ""
    kind: str = "plain"  # the request's kind (log.schema.KINDS)
    # the line's keys besides the messages: tools (and parallel_tool_calls) for a tools
    # request, response_format for a JSON one, as OpenAI's fine-tuning format has them
    extras: dict[str, Any] = field(default_factory=dict)
    target_calls: list[dict[str, Any]] | None = None  # OpenAI form: id, type, function
    student_calls: list[dict[str, Any]] | None = None

    def answer(self, text: str, calls: list[dict[str, Any]] | None) -> dict[str, Any]:
        """An assistant message: its tool calls (OpenAI's fine-tuning function-calling
        format) with any text beside them, else its text."""
        if calls:
            return {"role": "assistant", "tool_calls": calls} | (
                {"content": text} if text.strip() else {}
            )
        return {"role": "assistant", "content": text}

    def sft(self) -> dict[str, Any]:
        target = self.answer(self.target, self.target_calls)
        return {"messages": [*self.prompt, target], **self.extras}

    @property
    def calls_disagree(self) -> bool:
        """A tools example whose student answered otherwise than the target's tool calls
        (other functions or arguments, compared as JSON: key order and number forms aside;
        or text where the target calls a tool)."""
        if self.kind != "tools" or not (self.target_calls or self.student_calls):
            return False
        if not self.student_calls and not self.student.strip():
            return False  # the student gave nothing: no answer to prefer against
        return canonical_calls(self.target_calls) != canonical_calls(self.student_calls) or (
            not self.target_calls and self.student != self.target
        )

    @property
    def has_preference(self) -> bool:
        """Reviewers judged the student worse and its answer differs from the target; or a
        tools example whose student's calls disagree with the target's (not when the student's
        own answer is the target)."""
        if self.target_source != "student" and self.calls_disagree:
            return True
        differs = self.student != self.target or (
            canonical_calls(self.student_calls) != canonical_calls(self.target_calls)
        )
        has_answer = bool(self.student.strip()) or bool(self.student_calls)
        return self.student_worse and has_answer and differs

    def preference(self) -> dict[str, Any] | None:
        if not self.has_preference:
            return None
        return {
            "prompt": self.prompt,
            "chosen": [self.answer(self.target, self.target_calls)],
            "rejected": [self.answer(self.student, self.student_calls)],
            **self.extras,
        }

    @property
    def plain(self) -> bool:
        """Only role/content text messages and no extra keys (the fast writer's lines)."""
        return (
            not self.extras
            and not self.target_calls
            and not self.student_calls
            and all(len(m) == 2 and "content" in m for m in self.prompt)
        )


def _number(value: Any) -> Any:
    """JSON values with number forms made one (1.0 is 1) and keys sorted by the dump."""
    if isinstance(value, dict):
        return {str(k): _number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_number(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def canonical_calls(calls: list[dict[str, Any]] | None) -> list[tuple[str, str]]:
    """Tool calls as (name, canonical JSON of the arguments), for comparing two answers."""
    out: list[tuple[str, str]] = []
    for call in calls or []:
        fn = call.get("function") or call
        args = fn.get("arguments")
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                pass  # not JSON: compared as the text it is
        out.append((str(fn.get("name")), json.dumps(_number(args), sort_keys=True)))
    return out


def openai_calls(calls: Any, prefix: str) -> list[dict[str, Any]] | None:
    """A record's tool calls (``[{name, arguments}]``, or already in OpenAI's form) in
    OpenAI's form: ``{id, type: function, function: {name, arguments}}`` with the arguments
    a JSON string, as the fine-tuning format has them. ``prefix`` makes the ids the record
    did not keep (stable, unique within the example)."""
    if not isinstance(calls, list) or not calls:
        return None
    out = []
    for i, call in enumerate(calls):
        if not isinstance(call, dict):
            continue
        inner = call.get("function")
        fn: dict[str, Any] = inner if isinstance(inner, dict) else call
        args = fn.get("arguments")
        if not isinstance(args, str):
            args = json.dumps(args if args is not None else {}, ensure_ascii=False)
        out.append(
            {
                "id": str(call.get("id") or f"call_{prefix}_{i}"),
                "type": "function",
                "function": {"name": str(fn.get("name") or ""), "arguments": args},
            }
        )
    return out or None


def extras_of(features: Mapping[str, Any] | None, kind: str) -> dict[str, Any]:
    """The line's keys besides the messages, from the request's ``features`` (the record's
    ``request.features``): the tool definitions (the older ``functions`` given as tools)
    and ``parallel_tool_calls`` for a tools request, ``response_format`` (with its JSON
    schema) for a JSON one."""
    features = features or {}
    out: dict[str, Any] = {}
    if kind == "tools":
        tools = features.get("tools")
        if not tools and isinstance(features.get("functions"), list):
            tools = [{"type": "function", "function": f} for f in features["functions"]]
        if tools:
            out["tools"] = tools
        if isinstance(features.get("parallel_tool_calls"), bool):
            out["parallel_tool_calls"] = features["parallel_tool_calls"]
    elif kind in ("json_object", "json_schema") and isinstance(
        features.get("response_format"), dict
    ):
        out["response_format"] = features["response_format"]
    return out


def _text(content: Any) -> str:
    """Message content as text (OpenAI content parts are joined)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def normalize_prompt(
    messages: Iterable[dict[str, Any]], system_prompt: str = ""
) -> list[dict[str, Any]]:
    """The prompt as fine-tuning messages, or raise ValueError naming the chat rule broken.

    Leading system (and developer) messages become one system message; then user and
    assistant must alternate, starting with the user; an assistant's tool calls (OpenAI's
    function-calling format) are followed by the ``tool`` messages answering them, then by
    the assistant again. The prompt ends with a user message, or with tool answers that the
    target's assistant message takes up.
    """
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for n, msg in enumerate(messages):
        role, text = msg.get("role"), _text(msg.get("content"))
        if role in ("system", "developer"):
            if turns:
                raise ValueError("a system message in the middle of the conversation")
            if text.strip():
                system.append(text)
            continue
        last = turns[-1]["role"] if turns else None
        calling = bool(turns) and "tool_calls" in turns[-1]
        if role == "tool":
            if not (last == "tool" or calling):
                raise ValueError(
                    "role 'tool' cannot be fine-tuned on without the assistant's tool call "
                    "before it"
                )
            turns.append(
                {"role": "tool", "tool_call_id": str(msg.get("tool_call_id") or ""),
                 "content": text}
            )  # fmt: skip
            continue
        if role not in ("user", "assistant"):
            raise ValueError(f"role {role!r} cannot be fine-tuned on")
        if calling:
            raise ValueError("an assistant's tool call is not followed by the tool's answer")
        if last == role or (last == "tool" and role == "user"):
            raise ValueError(f"two {role} messages in a row" if last == role else
                             "a user message right after a tool's answer")  # fmt: skip
        if not turns and role != "user":
            raise ValueError("the conversation must start with the user")
        calls = openai_calls(msg.get("tool_calls"), f"m{n}") if role == "assistant" else None
        if calls:
            turns.append({"role": role, "tool_calls": calls} | ({"content": text} if text else {}))
        else:
            turns.append({"role": role, "content": text})
    if not turns or turns[-1]["role"] not in ("user", "tool"):
        raise ValueError("the prompt must end with a user message")
    if turns[-1]["role"] == "tool" and not any(t["role"] == "user" for t in turns):
        raise ValueError("the conversation must start with the user")
    if not system and system_prompt.strip():
        system = [system_prompt]
    head = [{"role": "system", "content": "\n\n".join(system)}] if system else []
    return head + turns


_KEYS = {"system": {"content"}, "user": {"content"}, "tool": {"content", "tool_call_id"}}


def check_chat(messages: list[dict[str, Any]]) -> None:
    """Raise ValueError unless ``messages`` follow the chat fine-tuning rules (OpenAI,
    Unsloth, TRL): roles system/user/assistant, at most one system message and only first,
    user and assistant alternating from the user, the last from the assistant, no empty text;
    with OpenAI's function calling, an assistant message may carry ``tool_calls`` (each
    ``{id, type: function, function: {name, arguments}}``, the arguments a JSON string)
    instead of text, answered by one ``tool`` message per call (``tool_call_id``, content)
    before the assistant speaks again.
    """
    if not messages:
        raise ValueError("no messages")
    body = messages[1:] if messages[0].get("role") == "system" else messages
    if not body:
        raise ValueError("only a system message")
    expected, pending = "user", list[str]()  # pending: the tool call ids still to answer
    for i, msg in enumerate(body):
        role = msg.get("role")
        if pending:
            if role != "tool" or msg.get("tool_call_id") not in pending:
                raise ValueError(f"message {i} must answer tool call(s) {sorted(pending)}")
            pending.remove(msg["tool_call_id"])
            expected = "tool" if pending else "assistant"
        elif role != expected:
            raise ValueError(f"message {i} is {role!r}, expected {expected!r}")
        elif role == "assistant" and "tool_calls" in msg:
            pending = [_check_call(c) for c in msg["tool_calls"]]
            if not pending:
                raise ValueError(f"message {i} has an empty list of tool calls")
            expected = "tool"
        elif role != "tool":
            expected = "assistant" if role == "user" else "user"
    if body[-1]["role"] != "assistant":
        raise ValueError("the last message must be the assistant's")
    for msg in messages:
        role = msg["role"]
        allowed = _KEYS.get(role, {"content", "tool_calls"})
        if set(msg) - {"role"} - allowed or ("content" not in msg and "tool_calls" not in msg):
            raise ValueError(f"message keys of a {role} message cannot be {sorted(msg)}")
        if "tool_calls" in msg and "content" not in msg:
            continue
        if not isinstance(msg["content"], str) or not msg["content"].strip():
            raise ValueError(f"empty {msg['role']} message")


def _check_call(call: Any) -> str:
    """The id of a tool call in OpenAI's form, or ValueError saying what is wrong."""
    fn = call.get("function") if isinstance(call, dict) else None
    if (
        not isinstance(fn, dict)
        or set(call) != {"id", "type", "function"}
        or call["type"] != "function"
        or set(fn) != {"name", "arguments"}
        or not fn["name"]
        or not isinstance(fn["arguments"], str)
    ):
        raise ValueError(f"a tool call must be {{id, type: function, function: {{name, "
                         f"arguments (a JSON string)}}}}, not {call!r}")  # fmt: skip
    try:
        json.loads(fn["arguments"])
    except ValueError:
        raise ValueError(f"tool call {call['id']!r}: the arguments are not JSON") from None
    return str(call["id"])


# --- split -----------------------------------------------------------------------------


def _rank(seed: str, key: str) -> str:
    return hashlib.sha256(f"{seed}\x00{key}".encode()).hexdigest()


def assign_splits(
    conversations: dict[str, tuple[str, int]],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: str = "shadowtutor",
    *,
    train: set[str] | None = None,
) -> dict[str, str]:
    """Map each conversation key to ``train``, ``val`` or ``test``.

    ``conversations`` maps key -> (language, number of examples); the keys in ``train`` go to
    train whatever happens. Within each language the other conversations are taken largest
    first (ties in the order of a hash of their key), and each goes to the split furthest
    below its share so far
    (the pinned ones counted), so every language is split in the asked proportions and a
    conversation is never divided. Deterministic for the same input.
    """
    train = train or set()
    by_lang: dict[str, list[tuple[int, str, str, int]]] = defaultdict(list)
    result: dict[str, str] = {}
    pinned: Counter[str] = Counter()
    for key, (lang, size) in conversations.items():
        if key in train:
            result[key] = SPLITS[0]
            pinned[lang] += size
        else:
            by_lang[lang].append((-size, _rank(seed, key), key, size))
    for lang in sorted(by_lang):
        counts = [pinned[lang], 0, 0]
        total = pinned[lang]
        for _, _, key, size in sorted(by_lang[lang]):
            total += size
            deficits = [f * total - c for f, c in zip(fractions, counts, strict=True)]
            best = max(range(3), key=lambda i: (deficits[i], -i))
            counts[best] += size
            result[key] = SPLITS[best]
    return result


def normalise(text: str) -> str:
    """Text as the export compares it: Unicode-normalised (NFKC), case-folded, punctuation
    and symbols dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(
        "".join(" " if unicodedata.category(ch)[0] in "PSZC" else ch for ch in text).split()
    )


def _containments(examples: list[Example], train_only: bool) -> list[tuple[Example, Example]]:
    """(holder, source) pairs: ``holder``'s context (every prompt message) contains
    ``source``'s target, compared normalised and as whole words; with ``train_only``, only
    train sources and val/test holders."""
    index: dict[str, dict[int, dict[tuple[str, ...], Example]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for e in examples:
        words = tuple(normalise(e.target).split())
        if words and (e.split == "train" or not train_only):
            index[words[0]][len(words)].setdefault(words, e)
    out: list[tuple[Example, Example]] = []
    for e in examples:
        if train_only and e.split == "train":
            continue
        for message in e.prompt:
            words = tuple(normalise(str(message.get("content", ""))).split())
            for i, word in enumerate(words):
                for size, targets in index.get(word, {}).items():
                    source = targets.get(words[i : i + size])
                    if source is not None and source.conversation != e.conversation:
                        out.append((e, source))
    return out


def leaking(examples: list[Example]) -> set[str]:
    """Conversations of val/test examples whose context contains a train example's target
    (normalised, whole words): training on that target would put the answer of an evaluation
    example in the model. :func:`split_examples` leaves none; the manifest counts them."""
    return {holder.conversation for holder, _ in _containments(examples, True)}


def prompt_key(prompt: list[dict[str, str]]) -> str:
    """The normalised text of the prompt's last user message (:func:`normalise`), so "Ciao!
    Come stai?" and "ciao come stai" are the same prompt."""
    text = next((m["content"] for m in reversed(prompt) if m["role"] == "user"), "")
    folded = unicodedata.normalize("NFKC", text).casefold()
    return normalise(text) or " ".join(folded.split())  # only punctuation or emoji: as they are


def split_examples(
    examples: list[Example],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: str = "shadowtutor",
) -> int:
    """Set each example's split so that neither a conversation nor a prompt is in two, in
    the asked proportions; the export and its preview both call this.

    Examples that share a conversation or a normalised prompt (:func:`prompt_key`: the same
    greeting from two conversations) are joined into one group, transitively; the groups are
    split by :func:`assign_splits` (each with the language most of its examples have, the
    largest first, so a big group cannot be the one that overshoots val or test). A val/test
    group whose context holds a train target (:func:`leaking`: a greeting turn whose reply is
    exactly a train answer) trades places with a train group of its size; returns how many
    groups moved to train.
    """
    group_of = group_finder(examples)
    languages: dict[str, Counter[str]] = defaultdict(Counter)
    for e in examples:
        languages[group_of(e)][e.language] += 1
    groups = {
        root: (min(langs, key=lambda lang: (-langs[lang], lang)), sum(langs.values()))
        for root, langs in languages.items()
    }
    splits = assign_splits(groups, fractions, seed)
    holds = _holds(examples, group_of)
    moved = _swap_leaks(examples, groups, splits, group_of, seed, holds)
    _rebalance(examples, groups, splits, group_of, fractions, seed, holds)
    return moved


def group_finder(examples: list[Example]) -> Callable[[Example], str]:
    """The split's groups: examples that share a conversation or a normalised prompt
    (:func:`prompt_key`), joined transitively; returns example -> its group's key."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        root = key
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[key] != root:  # path compression
            parent[key], key = root, parent[key]
        return root

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)  # the smaller key names the group: deterministic

    for e in examples:
        union("c:" + e.conversation, "p:" + prompt_key(e.prompt))
    return lambda e: find("c:" + e.conversation)


def _holds(examples: list[Example], group_of: Callable[[Example], str]) -> dict[str, set[str]]:
    """group -> the other groups whose targets its examples' contexts hold."""
    holds: dict[str, set[str]] = defaultdict(set)
    for holder, source in _containments(examples, False):
        if group_of(holder) != group_of(source):
            holds[group_of(holder)].add(group_of(source))
    return holds


def _rebalance(
    examples: list[Example],
    groups: dict[str, tuple[str, int]],
    splits: dict[str, str],
    group_of: Callable[[Example], str],
    fractions: Sequence[float],
    seed: str,
    holds: dict[str, set[str]],
) -> None:
    """Bring the whole export's split counts to the asked shares after the per-language
    assignment and the leak swaps (large shared-prompt groups leave them off by several
    points: 224/40/24 of 288 on the demo): move a group from a split over its share to one
    under it, with the groups that must go along so every val/test context stays free of
    train targets (:func:`closure` inside), while that brings the counts nearer; of the moves
    that do, the one that brings them nearest (then a group of the language most over its
    share in the split it leaves). Sets the examples' splits."""
    held_by: dict[str, set[str]] = defaultdict(set)
    for h, sources in holds.items():
        for src in sources:
            held_by[src].add(h)
    total = sum(size for _, size in groups.values())
    goal = dict(zip(SPLITS, (f * total for f in fractions), strict=True))
    counts: Counter[str] = Counter()
    per_lang: Counter[tuple[str, str]] = Counter()
    lang_total: Counter[str] = Counter()
    for g, where in splits.items():
        lang, size = groups[g]
        counts[where] += size
        per_lang[lang, where] += size
        lang_total[lang] += size
    share = dict(zip(SPLITS, fractions, strict=True))

    def closure(g: str, to: str, limit: float) -> list[str] | None:
        """``g`` and the groups that must move with it to ``to`` so no val/test context
        holds a train target: to val/test, the train groups whose targets it holds (and
        theirs); to train, the val/test groups holding its target (and theirs). None when
        they are more than ``limit`` examples (such a move cannot bring the counts nearer)."""
        edges, moving = (held_by, "val/test") if to == SPLITS[0] else (holds, SPLITS[0])
        found, todo, size = {g}, [g], groups[g][1]
        while todo:
            for nxt in edges[todo.pop()]:
                in_scope = splits[nxt] != SPLITS[0] if moving == "val/test" else (
                    splits[nxt] == SPLITS[0]
                )  # fmt: skip
                if nxt not in found and in_scope and splits[nxt] != to:
                    found.add(nxt)
                    todo.append(nxt)
                    size += groups[nxt][1]
                    if size > limit:
                        return None
        return sorted(found)

    def deviation(c: Mapping[str, float]) -> float:
        return sum(abs(c[x] - goal[x]) for x in SPLITS)

    while True:
        now = deviation(counts)
        best: tuple[float, float, str, str, list[str]] | None = None
        over_splits = [x for x in SPLITS if counts[x] > goal[x]]
        under_splits = [x for x in SPLITS if counts[x] < goal[x]]
        for g, where in splits.items():
            if where not in over_splits:
                continue
            lang = groups[g][0]
            for to in under_splits:
                moved = closure(g, to, now)
                if moved is None:
                    continue
                after = counts.copy()
                for m in moved:
                    after[splits[m]] -= groups[m][1]
                    after[to] += groups[m][1]
                gain = now - deviation(after)
                if gain <= 1e-9:
                    continue
                over = per_lang[lang, where] - share[where] * lang_total[lang]
                key = (-gain, -over, _rank(seed, g), to, moved)
                if best is None or key < best:
                    best = key
        if best is None:
            break
        to, moved = best[3], best[4]
        for m in moved:
            lang, size = groups[m]
            counts[splits[m]] -= size
            counts[to] += size
            per_lang[lang, splits[m]] -= size
            per_lang[lang, to] += size
            splits[m] = to
    for e in examples:
        e.split = splits[group_of(e)]


def _swap_leaks(
    examples: list[Example],
    groups: dict[str, tuple[str, int]],
    splits: dict[str, str],
    group_of: Callable[[Example], str],
    seed: str,
    holds: dict[str, set[str]],
) -> int:
    """Set the examples' splits from ``splits`` (group -> split), then move each group whose
    val/test examples hold a train target in their context to train, swapping in its place
    train groups holding no train target (of its language first), as many examples as it had
    (so the proportions stay), until no such group is left; returns how many moved to train.
    ``holds``: group -> the groups whose targets it holds (:func:`_holds`)."""

    def leaks(root: str) -> bool:
        return splits[root] != SPLITS[0] and any(splits[g] == SPLITS[0] for g in holds[root])

    settled: set[str] = set()  # moved to train for a leak: they stay there
    while found := sorted(root for root in groups if leaks(root)):
        for root in found:
            lang, size = groups[root]
            spare = sorted(  # train groups holding no train target: its language first
                (groups[g][0] != lang, -groups[g][1], _rank(seed, g), g)
                for g, where in splits.items()
                if where == SPLITS[0] and g not in settled
                and not any(splits[h] == SPLITS[0] for h in holds[g] - {root})
            )  # fmt: skip
            left = size
            for _, minus_size, _, g in spare:
                if 0 < -minus_size <= left:
                    splits[g], left = splits[root], left + minus_size
            splits[root] = SPLITS[0]
            settled.add(root)
    for e in examples:
        e.split = splits[group_of(e)]
    return len(settled)


# --- build -----------------------------------------------------------------------------


@dataclass
class BuildReport:
    matched: int = 0
    dropped: Counter[str] = field(
        default_factory=Counter
    )  # empty | too_long | duplicate | invalid_chat
    invalid_reasons: Counter[str] = field(default_factory=Counter)
    pii: Counter[str] = field(default_factory=Counter)
    pairs_with_pii: int = 0
    target_sources: Counter[str] = field(default_factory=Counter)
    moved_to_train: int = 0  # groups moved so no val/test context holds a train target
    tools_without_definitions: int = 0  # tools examples whose pair did not keep the tools
    asked: tuple[float, ...] = (0.8, 0.1, 0.1)  # the split asked for (train, val, test)


def build_examples(
    candidates: list[Candidate], snapshots: Mapping[int, Mapping[str, Any]], options: ExportOptions
) -> tuple[list[Example], BuildReport]:
    """Examples in pair-id order, scrubbed, with empty, over-long, invalid and duplicate
    ones dropped and counted. A tools pair's target is its answer's tool calls (OpenAI's
    function-calling form) and its line carries the tool definitions; a JSON pair's line
    carries its response format (:func:`extras_of`)."""
    report = BuildReport(matched=len(candidates))
    seen: set[tuple[str, str]] = set()
    shared: dict[str, str] = {}
    examples: list[Example] = []
    max_chars = options.max_tokens * 4
    for cand in candidates:
        snap = snapshots.get(cand.item_id) or {}
        try:
            prompt = normalize_prompt(snap.get("messages") or [], options.system_prompt)
        except ValueError as exc:
            report.dropped["invalid_chat"] += 1
            report.invalid_reasons[str(exc)] += 1
            continue
        request = snap.get("request") or {}
        kind = str(request.get("kind") or "plain")
        prefix = hashlib.sha256(cand.pair_id.encode()).hexdigest()[:8]
        teacher_answer, student_answer = snap.get("teacher") or {}, snap.get("student") or {}
        teacher = _text(teacher_answer.get("response"))
        student = _text(student_answer.get("response"))
        teacher_calls = openai_calls(teacher_answer.get("tool_calls"), prefix)
        student_calls = openai_calls(student_answer.get("tool_calls"), prefix)
        target, target_calls, source = _target(
            cand, (teacher, teacher_calls), (student, student_calls), options, kind, prefix
        )
        found: Counter[str] = Counter()
        if options.scrub_pii:
            prompt, target, teacher, student = _scrub_all(prompt, target, teacher, student, found)
            for calls in {id(c): c for c in (target_calls, student_calls) if c}.values():
                _scrub_calls(calls, found)  # the target may be the student's own calls
        size, empty = len(target), not target.strip() and not target_calls
        for m in prompt:
            size += len(m.get("content", "")) + sum(
                len(c["function"]["arguments"]) for c in m.get("tool_calls", [])
            )
            empty = empty or ("tool_calls" not in m and not m["content"].strip())
        size += sum(len(c["function"]["arguments"]) for c in target_calls or [])
        if empty:
            report.dropped["empty"] += 1
            continue
        if size > max_chars:
            report.dropped["too_long"] += 1
            continue
        if prompt[0]["role"] == "system":
            # one shared string per distinct system prompt: 100,000 copies of a 1 kB prompt
            # would cost 100 MB and a fresh hash at every later lookup
            text = prompt[0]["content"]
            prompt[0]["content"] = shared.setdefault(text, text)
        extras = extras_of(request.get("features"), kind)
        key = (
            json.dumps([prompt, extras], sort_keys=True),
            json.dumps([target, canonical_calls(target_calls)]),
        )
        if key in seen:
            report.dropped["duplicate"] += 1
            continue
        seen.add(key)
        if found:
            report.pairs_with_pii += 1
            report.pii.update(found)
        report.target_sources[source] += 1
        if kind == "tools" and not extras.get("tools"):
            report.tools_without_definitions += 1
        examples.append(
            Example(
                pair_id=cand.pair_id,
                # a raw conversation id (an e-mail) logged before ids were pseudonymised
                # never leaves: the export carries its pseudonym
                conversation=schema.pseudonymize_conversation(snap.get("conversation_id"))
                or cand.pair_id,
                language=cand.language or snap.get("language") or "unknown",
                category=cand.category or snap.get("category") or "unknown",
                source=str(snap.get("source") or ""),
                ts=str(snap.get("ts") or ""),
                prompt=prompt,
                target=target,
                target_source=source,
                teacher=teacher,
                student=student,
                student_score=cand.student_score,
                student_worse=cand.student_worse(options.preference_max_student_score),
                tags=cand.tags,
                kind=kind,
                extras=extras,
                target_calls=target_calls,
                student_calls=student_calls,
            )
        )
    return examples, report


Answered = tuple[str, list[dict[str, Any]] | None]  # an answer's text and its tool calls


def _target(
    cand: Candidate,
    teacher: Answered,
    student: Answered,
    options: ExportOptions,
    kind: str = "plain",
    prefix: str = "",
) -> tuple[str, list[dict[str, Any]] | None, str]:
    """The target's text, tool calls and source: a reviewer's correction (for a tools
    pair, a correction written as JSON tool calls ``[{name, arguments}]`` is taken as calls),
    else the student's answer when scored at or above the floor, else the teacher's."""
    corrected = cand.corrected_answer()
    if corrected:
        calls = _corrected_calls(corrected, prefix) if kind == "tools" else None
        return ("", calls, "corrected") if calls else (corrected, None, "corrected")
    floor = options.student_target_min_score
    score = cand.student_score
    if (
        floor is not None
        and score is not None
        and score >= floor
        and (student[0].strip() or student[1])
    ):
        return student[0], student[1], "student"
    return teacher[0], teacher[1], "teacher"


def _corrected_calls(text: str, prefix: str) -> list[dict[str, Any]] | None:
    """A correction that is JSON tool calls (one ``{name, arguments}`` or a list of them)."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    value = [value] if isinstance(value, dict) else value
    if not isinstance(value, list) or not value:
        return None
    for call in value:
        fn = call.get("function", call) if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            return None
    return openai_calls(value, f"{prefix}c")


def _scrub_calls(calls: list[dict[str, Any]] | None, found: Counter[str]) -> None:
    for call in calls or []:  # the export's own dicts (openai_calls): scrubbed in place
        res = pii.scrub(call["function"]["arguments"])
        if res.counts:
            found.update(res.counts)
            call["function"]["arguments"] = res.text


def _scrub_all(
    prompt: list[dict[str, Any]], target: str, teacher: str, student: str, found: Counter[str]
) -> tuple[list[dict[str, Any]], str, str, str]:
    scrub = pii.scrub
    for msg in prompt:  # the prompt's dicts are this function's own (normalize_prompt)
        if "content" in msg:
            res = scrub(msg["content"])
            if res.counts:
                found.update(res.counts)
                msg["content"] = res.text
        _scrub_calls(msg.get("tool_calls"), found)
    t, te, st = scrub(target), scrub(teacher), scrub(student)
    for res in (t, st) if target == teacher else (t, te, st):  # count a shared text once
        if res.counts:
            found.update(res.counts)
    return prompt, t.text, te.text, st.text


# --- writing ---------------------------------------------------------------------------


def _dumps(obj: Any) -> str:
    """Reference encoding of one line; the fast writers below must produce the same bytes."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"


class _LineWriter:
    """JSON lines as ``_dumps`` writes them, built from pre-encoded strings: a 100,000-pair
    export repeats the same system prompt 100,000 times, so it is encoded once."""

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}

    def msg(self, m: dict[str, str]) -> str:
        if m["role"] == "system":
            enc = self._cache.get(m["content"])
            if enc is None:
                enc = self._cache[m["content"]] = encode_basestring(m["content"])
        else:
            enc = encode_basestring(m["content"])
        return f'{{"content":{enc},"role":{encode_basestring(m["role"])}}}'

    def messages(self, msgs: list[dict[str, str]]) -> str:
        return "[" + ",".join(self.msg(m) for m in msgs) + "]"

    def sft(self, e: Example) -> str:
        if not e.plain:  # tool calls, tool answers, definitions: the reference encoding
            return _dumps(e.sft())
        target = {"role": "assistant", "content": e.target}
        return '{"messages":' + self.messages([*e.prompt, target]) + "}\n"

    def preference(self, e: Example) -> str | None:
        if not e.has_preference:
            return None
        if not e.plain:
            return _dumps(e.preference())
        chosen = self.messages([{"role": "assistant", "content": e.target}])
        rejected = self.messages([{"role": "assistant", "content": e.student}])
        prompt = self.messages(e.prompt)
        return f'{{"chosen":{chosen},"prompt":{prompt},"rejected":{rejected}}}\n'


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(text: str) -> str:
    # a spreadsheet would run "=cmd()" as a formula: model text must stay text
    return "'" + text if text.startswith(_FORMULA_START) else text


def render_files(examples: list[Example], options: ExportOptions) -> dict[str, bytes]:
    """The data files' bytes by file name; a pure function of the examples and options."""
    ordered = sorted(examples, key=lambda e: (_rank(options.seed, e.pair_id), e.pair_id))
    files: dict[str, bytes] = {}
    writer = _LineWriter()
    if "sft" in options.formats:
        for split in SPLITS:
            lines = (writer.sft(e) for e in ordered if e.split == split)
            files[f"sft_{split}.jsonl"] = "".join(lines).encode()
    if "preference" in options.formats:
        for split in SPLITS:
            prefs = (writer.preference(e) for e in ordered if e.split == split)
            files[f"preference_{split}.jsonl"] = "".join(p for p in prefs if p).encode()
    if "csv" in options.formats:
        buf = io.StringIO()
        table = csv.writer(buf, lineterminator="\n")
        table.writerow(CSV_COLUMNS)
        cell = _csv_cell
        rows = sorted(ordered, key=lambda e: (SPLITS.index(e.split), e.pair_id))
        table.writerows(
            (
                e.split, cell(e.pair_id), cell(e.conversation), e.ts, cell(e.language),
                cell(e.category), cell(e.source), cell(_last_user(e.prompt)),
                cell(_answer_cell(e.target, e.target_calls)), e.target_source,
                cell(e.teacher), cell(_answer_cell(e.student, e.student_calls)),
                "" if e.student_score is None else f"{e.student_score:.2f}",
                "yes" if e.student_worse else "no", cell("; ".join(e.tags)),
            )
            for e in rows
        )  # fmt: skip
        files["pairs.csv"] = buf.getvalue().encode()
    return files


def _last_user(prompt: list[dict[str, Any]]) -> str:
    return next((m["content"] for m in reversed(prompt) if m["role"] == "user"), "")


def _answer_cell(text: str, calls: list[dict[str, Any]] | None) -> str:
    """An answer in the CSV: its text, or its tool calls as JSON ``[{name, arguments}]``."""
    if not calls:
        return text
    named = [{"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
             for c in calls]  # fmt: skip
    return json.dumps(named, ensure_ascii=False) + (f"\n{text}" if text.strip() else "")


def _breakdown(examples: list[Example], attr: str) -> dict[str, dict[str, int]]:
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for e in examples:
        out[getattr(e, attr)][e.split] += 1
    return {k: {s: out[k][s] for s in SPLITS} for k in sorted(out)}


SPLIT_TOLERANCE = 0.01  # one point of share: what "split as asked" allows
SPLIT_MIN_EXAMPLES = 200  # below this, whole conversations cannot reach one point


def split_check(examples: list[Example], asked: Sequence[float]) -> dict[str, Any]:
    """The split asked and got (shares of the examples), whether every share is within one
    point of the asked one, and whether the export is big enough (:data:`SPLIT_MIN_EXAMPLES`)
    for that to be expected. When one group (conversations joined by a shared prompt) is most
    of the export, or its targets sit in the other conversations' contexts, whole groups and
    leak-free val/test cannot reach it: ``largest_group`` says how big that group is."""
    n = len(examples)
    per = Counter(e.split for e in examples)
    got = {s: round(per[s] / n, 4) if n else 0.0 for s in SPLITS}
    want = dict(zip(SPLITS, (round(float(f), 4) for f in asked), strict=True))
    group_of = group_finder(examples)
    sizes = Counter(group_of(e) for e in examples)
    return {
        "asked": want,
        "got": got,
        "within_one_point": all(abs(got[s] - want[s]) <= SPLIT_TOLERANCE + 1e-9 for s in SPLITS),
        "expected": n >= SPLIT_MIN_EXAMPLES,
        "largest_group": max(sizes.values(), default=0),
    }


def counts_of(
    examples: list[Example], report: BuildReport, files: dict[str, bytes]
) -> dict[str, Any]:
    per_split = Counter(e.split for e in examples)
    prefs = {s: files.get(f"preference_{s}.jsonl", b"").count(b"\n") for s in SPLITS}
    return {
        "matched": report.matched,
        "examples": len(examples),
        "per_split": {s: per_split[s] for s in SPLITS},
        "preference_pairs": prefs if any(f.startswith("preference_") for f in files) else {},
        "per_language": _breakdown(examples, "language"),
        "per_category": _breakdown(examples, "category"),
        "target_sources": dict(sorted(report.target_sources.items())),
        "dropped": {
            k: report.dropped[k] for k in ("duplicate", "empty", "too_long", "invalid_chat")
        },
        "invalid_reasons": dict(sorted(report.invalid_reasons.items())),
        "pii": {k: report.pii[k] for k in pii.KINDS},
        "pairs_with_pii": report.pairs_with_pii,
        "per_kind": _breakdown(examples, "kind"),
        "tools_without_definitions": report.tools_without_definitions,
        "split_check": split_check(examples, report.asked),
        "containment_check": {
            "val_test_conversations_holding_a_train_target": len(leaking(examples)),
            "groups_moved_to_train": report.moved_to_train,
        },
    }
