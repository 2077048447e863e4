"""What the Playground adds to a streamed answer: TTFT and total latency measured through
``playground.run_turn`` (worker threads, a queue, the ``on_text`` callback) against the bare
``OllamaBackend.stream_chat`` on the same loopback Ollama server, and the same with the teacher
streaming beside it from a loopback OpenAI server.

    /work/venv/bin/python bench/playground_bench.py --turns 300 --words 60 --chunk-delay 0.002

Prints the median and p95 of TTFT and total latency (ms) for each way, and the median overhead.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from shadowtutor.backends import OllamaBackend, OpenAIBackend  # noqa: E402
from shadowtutor.playground import chat  # noqa: E402
from shadowtutor.similarity import SimilarityMethod  # noqa: E402
from shadowtutor.testing.modelserver import ModelServer  # noqa: E402


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def bare(backend: OllamaBackend, turns: int) -> tuple[list[float], list[float]]:
    ttft, total = [], []
    for i in range(turns):
        start, first = time.perf_counter(), None
        for chunk in backend.stream_chat([{"role": "user", "content": f"question {i}"}]):
            if chunk.text and first is None:
                first = time.perf_counter()
        ttft.append((first - start) * 1000)
        total.append((time.perf_counter() - start) * 1000)
    return ttft, total


def through_playground(
    backend: OllamaBackend, teacher: OpenAIBackend | None, turns: int
) -> tuple[list[float], list[float]]:
    """Times as the page sees them: from the call to the first student ``on_text`` and to
    the finished turn (cost and similarity included)."""
    ttft, total = [], []
    for i in range(turns):
        conversation = chat.Chat(model=backend.model)  # one turn each, as the bare loop
        first: list[float] = []

        def on_text(who: str, text: str, first: list[float] = first) -> None:
            if who == "student" and not first:
                first.append(time.perf_counter())

        start = time.perf_counter()
        turn = chat.run_turn(
            conversation, f"question {i}", student=backend, teacher=teacher,
            similarity=SimilarityMethod() if teacher else None, on_text=on_text,
        )  # fmt: skip
        total.append((time.perf_counter() - start) * 1000)
        assert turn.student.error is None, turn.student.error
        ttft.append((first[0] - start) * 1000)
    return ttft, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--turns", type=int, default=300)
    ap.add_argument("--words", type=int, default=60, help="words (stream chunks) per answer")
    ap.add_argument("--chunk-delay", type=float, default=0.002, help="seconds between chunks")
    args = ap.parse_args()
    text = " ".join(f"word{i}" for i in range(args.words))
    with (
        ModelServer(models=["llama3"], answer=text, chunk_delay=args.chunk_delay) as student,
        ModelServer(models=["gpt-4o-mini"], answer=text, chunk_delay=args.chunk_delay) as teacher,
    ):
        backend = OllamaBackend(base_url=student.url, model="llama3", timeout=30)
        openai = OpenAIBackend(
            base_url=teacher.openai_url, api_key="k", model="gpt-4o-mini", timeout=30
        )
        bare(backend, 10)  # warm up connections
        rows = {
            "bare stream_chat": bare(backend, args.turns),
            "playground, student only": through_playground(backend, None, args.turns),
            "playground, teacher beside": through_playground(backend, openai, args.turns),
        }
    print(
        f"{args.turns} turns, {args.words} chunks per answer, "
        f"{args.chunk_delay * 1000:g} ms between chunks (loopback Ollama / OpenAI servers)"
    )
    print("| way | TTFT p50 | TTFT p95 | total p50 | total p95 |")
    print("|---|---|---|---|---|")
    for name, (ttft, total) in rows.items():
        print(
            f"| {name} | {statistics.median(ttft):.2f} ms | {p95(ttft):.2f} ms | "
            f"{statistics.median(total):.2f} ms | {p95(total):.2f} ms |"
        )


if __name__ == "__main__":
    main()
