"""What exo sends reaches the client: its thinking (``delta.reasoning_content``) through the
endpoint, streamed and not, with the official openai SDK as the client."""

from __future__ import annotations

import pytest

from tests.endpoint_fixtures import HELLO, client, endpoint  # noqa: F401

pytestmark = pytest.mark.usefixtures("keys_in_env")
THINKING = "The user greets me ; a greeting back is polite ."


async def test_reasoning_content_is_streamed_to_the_client(client, exo):  # noqa: F811
    exo.thinking = THINKING
    stream = await client.chat.completions.create(model="llama-3.2-3b", messages=HELLO, stream=True)
    thinking, answer = [], []
    async for chunk in stream:
        for choice in chunk.choices:
            extra = choice.delta.model_extra or {}
            thinking.append(extra.get("reasoning_content") or "")
            answer.append(choice.delta.content or "")
    assert "".join(thinking).strip() == THINKING
    assert "".join(answer).strip() == "Hello from the fake provider ."
    first_thought = next(i for i, t in enumerate(thinking) if t)
    first_word = next(i for i, a in enumerate(answer) if a)
    assert first_thought < first_word  # in exo's order: thinking, then the answer


async def test_reasoning_content_is_in_the_whole_answer(client, exo):  # noqa: F811
    exo.thinking = THINKING
    completion = await client.chat.completions.create(model="llama-3.2-3b", messages=HELLO)
    message = completion.choices[0].message
    assert message.content.strip() == "Hello from the fake provider ."
    assert (message.model_extra or {})["reasoning_content"].strip() == THINKING
