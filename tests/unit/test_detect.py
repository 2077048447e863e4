"""Built-in language and category detection (pure functions, parametrized tables)."""

from __future__ import annotations

import pytest

from shadowtutor.detect import detect_category, detect_language


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Ciao, come stai oggi?", "it"),
        ("Vorrei sapere quando arriva il mio ordine", "it"),
        ("Hello, how are you doing today?", "en"),
        ("What is the status of my order please", "en"),
        ("Selamat pagi, apa kabar?", "id"),
        ("Saya ingin tahu berapa harga produk ini", "id"),
        ("Hola, ¿cómo estás? Quiero una pizza", "es"),
        ("Bonjour, je voudrais une facture pour ma commande", "fr"),
        ("Guten Morgen, ich habe eine Frage zu meiner Rechnung", "de"),
        ("", None),
        ("12345 !!!", None),
        ("xyzzy plugh", None),
    ],
)
def test_language(text: str, lang: str | None) -> None:
    assert detect_language(text) == lang


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("hi!", "greeting"),
        ("Ciao, buongiorno!", "greeting"),
        ("Selamat pagi", "greeting"),
        ("thanks a lot, see you", "greeting"),
        ("Where is my order #123?", "business"),
        ("Mi serve la fattura di marzo", "business"),
        ("Berapa harga langganan bulanan?", "business"),
        ("hello, can I get a refund?", "business"),  # business wins over greeting
        ("What's your favourite film?", "casual"),
        ("hi, I was wondering what you think about the weather in Rome in spring", "casual"),
        ("", "casual"),
    ],
)
def test_category(text: str, category: str) -> None:
    assert detect_category(text) == category


def test_a_huge_prompt_is_read_only_at_its_head_and_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    """Detection runs before the answer (and on the proxy's event loop): a 20 MB prompt must
    cost what a small one costs, so the tokenizer sees a bounded text."""
    from shadowtutor import detect

    seen: list[int] = []
    scanned = detect.scanned
    monkeypatch.setattr(detect, "scanned", lambda text: seen.append(len(s := scanned(text))) or s)
    question = " Posso avere un rimborso per il mio ordine?"
    huge = "lorem ipsum dolor " * (20 * 1024 * 1024 // 18) + question
    assert detect_category(huge) == "business"  # the question at the end still counts
    assert detect_language(huge) == "it"
    assert max(seen) <= 2 * detect.SCAN_CHARS + 1
