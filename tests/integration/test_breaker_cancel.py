"""A cancelled probe (AsyncOpenAI, asyncio.wait_for around create) must not leave the breaker
half-open for good: once the student is healthy again, it serves again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest

from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.config import Settings
from shadowtutor.testing.modelserver import ModelServer

STUDENT_SAYS = "ciao sto bene grazie"
MESSAGES = [{"role": "user", "content": "ciao come stai"}]


@pytest.fixture
def servers() -> Iterator[tuple[ModelServer, ModelServer]]:
    with ModelServer(models=["gpt-4o-mini"]) as teacher:
        with ModelServer(models=["llama3"], answer=STUDENT_SAYS) as student:
            yield teacher, student


def test_cancelled_probe_does_not_keep_skipping_a_healthy_student(
    home: Path, route_to_student: Callable[..., None], servers: tuple[ModelServer, ModelServer]
) -> None:
    teacher, student = servers
    route_to_student()
    cooldown = 0.5
    settings = Settings.load(
        {
            "SHADOWTUTOR_HOME": str(home),
            "SHADOWTUTOR_STUDENT_BASE_URL": student.url,
            "SHADOWTUTOR_STUDENT_TIMEOUT_S": "5",
            "SHADOWTUTOR_BREAKER_FAILURES": "1",
            "SHADOWTUTOR_BREAKER_COOLDOWN_S": str(cooldown),
            "SHADOWTUTOR_SAMPLE_PERCENT": "0",
        }
    )

    async def scenario() -> list[str]:
        with ShadowCollector(settings) as c:
            client = c.wrap(
                openai.AsyncOpenAI(base_url=teacher.openai_url, api_key="k", max_retries=0)
            )

            async def ask() -> str:
                reply = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
                return reply.choices[0].message.content

            student.down()
            await ask()  # the student fails once: the breaker opens
            assert c.breaker.state == "open"
            student.up()
            student.delay = 2.0
            await asyncio.sleep(cooldown)
            with pytest.raises(TimeoutError):  # the probe is cancelled mid-call
                await asyncio.wait_for(ask(), 0.2)
            student.delay = 0.0
            await asyncio.sleep(cooldown + 0.1)
            answers = [await ask() for _ in range(5)]
            assert c.stats()["breaker_abandoned_probes"] == 1  # counted, not silent
            return answers

    started = time.monotonic()
    answers = asyncio.run(scenario())
    assert STUDENT_SAYS in answers, answers  # the healthy student serves again
    assert time.monotonic() - started < 30
