"""The Playground in headless Chromium against a loopback Ollama-protocol student and an
OpenAI-protocol teacher: two turns with the teacher beside, then a screenshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from shadowtutor import db
from shadowtutor.testing.modelserver import ModelServer
from tests.support.apputil import make_user
from tests.support.browser import SCREENSHOTS, app_server, browser_page, login, open_page, wait_idle

pytestmark = pytest.mark.browser

STUDENT = {
    "table": "Certo! Posso prenotare un tavolo per due stasera alle 20:00. "
    "Preferisci la sala interna o la terrazza?",
    "terrace": "Perfetto, ho segnato la terrazza. A che nome faccio la prenotazione?",
}
TEACHER = {
    "table": "Certo! Posso prenotare un tavolo per due persone stasera alle 20:00. "
    "Preferisce la sala interna oppure la terrazza?",
    "terrace": "Benissimo, terrazza per due alle 20:00. A quale nome registro la prenotazione?",
}


def _answers(table: dict[str, str]):  # noqa: ANN202
    def answer(messages: list[dict], model: str) -> str:
        prompt = messages[-1]["content"].lower()
        return table["terrace" if "terrazza" in prompt else "table"]

    return answer


def test_playground_conversation_screenshot(tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'shadowtutor.db'}"
    db.upgrade(url)
    make_user(url, "admin", "ada")
    with (
        ModelServer(
            models=["llama3.1:8b", "qwen2.5:7b"], answer=_answers(STUDENT), chunk_delay=0.03
        ) as student,
        ModelServer(models=["gpt-4o-mini"], answer=_answers(TEACHER), chunk_delay=0.01) as teacher,
    ):
        env = {
            "SHADOWTUTOR_STUDENT_BASE_URL": student.url,
            "SHADOWTUTOR_STUDENT_MODEL": "llama3.1:8b",
            "SHADOWTUTOR_TEACHER_BASE_URL": teacher.openai_url,
            "SHADOWTUTOR_TEACHER_API_KEY": "sk-loopback",
        }
        with app_server(home, extra_env=env) as base, browser_page(height=1500) as page:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            login(page, base, "ada", "password-admin")
            open_page(page, "Playground", wait_for_text="Student server")
            page.get_by_label("System prompt").fill(
                "Sei l'assistente di prenotazione di una trattoria. Rispondi in italiano."
            )
            page.get_by_text("Teacher beside").click()
            wait_idle(page)
            box = page.get_by_placeholder("Message the student")
            box.fill("Buonasera! Vorrei un tavolo per due stasera.")
            box.press("Enter")
            page.get_by_text("sala interna o la terrazza").first.wait_for()
            wait_idle(page)
            student.chunk_delay = 0.4  # the second answer arrives a word at a time
            box.fill("La terrazza, grazie.")
            box.press("Enter")
            page.get_by_text("Perfetto, ho segnato").first.wait_for()
            assert page.get_by_text(STUDENT["terrace"], exact=True).count() == 0  # still coming
            page.screenshot(path=str(SCREENSHOTS / "playground-streaming.png"))
            page.get_by_text("Similarity (lexical)").nth(1).wait_for()  # the turn is done
            wait_idle(page)
            page.screenshot(path=str(SCREENSHOTS / "playground.png"), full_page=True)
            assert page.get_by_text("Similarity (lexical)").count() == 2
            assert page.get_by_text("TTFT").count() == 4
            assert page.locator('[data-testid="stDataFrame"]').is_visible()  # the health table
        assert student.count("/api/chat") == 2 and teacher.count("/v1/chat/completions") == 2
