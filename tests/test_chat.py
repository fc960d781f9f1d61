"""The chat window (offscreen Qt) against the fake providers."""

from __future__ import annotations

import asyncio
import itertools
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("PySide6", reason="the desktop extra is not installed")

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from desktop.windows.chat import render_markdown
from tests.conftest import until

pytestmark = pytest.mark.usefixtures("keys_in_env")


async def test_answer_streams_in_while_the_loop_stays_responsive(chat, exo):
    exo.chunk_delay_s = 0.06
    ticks = []

    async def heartbeat():
        while True:
            ticks.append(asyncio.get_running_loop().time())
            await asyncio.sleep(0.01)

    beat = asyncio.ensure_future(heartbeat())
    chat.prompt.setPlainText("hello")
    QTest.keyClick(chat.prompt, Qt.Key.Key_Return)
    assert chat.send.text() == "Stop" and chat.prompt.toPlainText() == ""
    seen = []
    for _ in range(250):
        seen.append(len(chat.turns[0].answer))
        if chat.turns[0].done:
            break
        await asyncio.sleep(0.02)
    await until(lambda: chat.task is None)
    beat.cancel()
    growth = sorted(set(seen))
    assert len(growth) >= 4  # the text grew chunk by chunk, not all at once
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.1  # never frozen
    text = chat.transcript.toPlainText()
    assert "Hello from the fake provider ." in text
    footer = text.splitlines()[-1]  # under the answer
    assert "Exo Local" in footer and "free" in footer and "first token" in footer


async def test_shift_enter_is_a_new_line(chat, exo):
    chat.prompt.setPlainText("one")
    chat.prompt.moveCursor(chat.prompt.textCursor().MoveOperation.End)
    QTest.keyClick(chat.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert chat.turns == [] and chat.prompt.toPlainText() == "one\n"


async def test_stop_cancels_upstream(chat, exo):
    exo.chunk_delay_s = 0.1
    chat.prompt.setPlainText("hello")
    chat.submit()
    await until(lambda: "Hello" in chat.turns[0].answer)
    chat.send.click()  # Stop
    await until(lambda: chat.task is None)
    await until(lambda: exo.cancelled_streams == 1)
    assert chat.turns[0].footer == "stopped" and chat.send.text() == "Send"


async def agree_to_pay(chat) -> None:
    """The first paid answer of the day: the chat asks; say yes with a click."""
    await until(lambda: chat.paid_question.isVisible())
    QTest.mouseClick(chat.paid_question.send, Qt.MouseButton.LeftButton)
    await until(lambda: chat.task is None and chat.turns and chat.turns[-1].done)


async def test_footer_shows_failover_and_cost(chat, exo):
    exo.stop()
    chat.prompt.setPlainText("hello")
    chat.submit()
    await until(lambda: chat.task is None)
    await agree_to_pay(chat)
    footer = chat.turns[0].footer
    assert footer.startswith("OpenRouter ↪ failover") and "$0.0000" in footer
    assert footer in chat.transcript.toPlainText()
    # exo refused the first time (the free way, before the yes): skipped the second
    assert chat.status.toolTip().startswith(
        "Last answer: exo: circuit-open (connection refused) → openrouter: ok")


async def test_failure_shows_attempts_and_retry_works(chat, exo, openrouter, hf):
    exo.stop(); openrouter.stop(); hf.stop()
    chat.prompt.setPlainText("hello")
    chat.submit()
    await until(lambda: chat.task is None)
    await agree_to_pay(chat)  # OpenRouter may answer: said yes to, it is tried too
    text = chat.transcript.toPlainText()
    assert "No answer" in text and "Retry" in text
    # what to do, per provider, instead of bare skip reasons (those stay in the tooltip)
    assert "exo is not reachable" in text and "run `exo`" in text
    assert "OpenRouter: it could not be reached" in text and "exo refused" not in text
    assert "exo: circuit-open (connection refused)" in chat.status.toolTip()  # the attempts
    exo.start()
    await chat.bridge.router.probe(chat.bridge.router.config.provider("exo"))
    from PySide6.QtCore import QUrl
    chat._on_link(QUrl("retry:0"))
    await until(lambda: chat.task is None and chat.turns[-1].done)
    assert len(chat.turns) == 1 and "Hello from the fake provider" in chat.transcript.toPlainText()


async def test_conversation_keeps_history_until_new_chat(chat, exo):
    for text in ("first", "second"):
        chat.prompt.setPlainText(text)
        chat.submit()
        await until(lambda: chat.task is None)
    sent = exo.chat_requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    chat.new_chat.click()
    chat.prompt.setPlainText("third")
    chat.submit()
    await until(lambda: chat.task is None)
    assert [m["content"] for m in exo.chat_requests[-1].body["messages"]] == ["third"]


def test_code_blocks_are_monospaced():
    rendered = render_markdown("see:\n```python\nprint('<hi>')\n```\ndone")
    assert "<pre style='font-family: monospace'>print(&#x27;&lt;hi&gt;&#x27;)\n</pre>" in rendered
    assert rendered.endswith("<br>done")


async def test_recent_pass_through_models_join_the_picker(chat, openrouter):
    chat.model.setCurrentText("anthropic/claude-sonnet-4")
    chat.prompt.setPlainText("hi")
    chat.submit()
    await until(lambda: chat.task is None)
    assert chat.model.findText("anthropic/claude-sonnet-4") >= 0
    assert chat.model.itemText(0) == "llama-3.2-3b"


# -- issue 28: no silent spending ------------------------------------------------------------

async def test_with_exo_down_the_route_line_says_the_next_answer_is_paid_and_asks_once_a_day(
        chat, exo, openrouter):
    from datetime import timedelta

    router = chat.bridge.router
    await router.check_all()
    assert chat.next_line.text() == "Next answer: Exo Local, free" and not chat.next_line.font().bold()
    exo.stop()
    await router.probe(router.config.provider("exo"))  # the next 5-second probe, at once
    line = chat.next_line.text()
    assert line.startswith("⚠ Next answer will be paid: OpenRouter (Exo Local is down")
    assert "no daily USD limit" in line and chat.next_line.font().bold()
    QTest.keyClicks(chat.prompt, "what is 2+2?")
    QTest.keyClick(chat.prompt, Qt.Key.Key_Return)
    question = chat.paid_question
    assert question.isVisible() and "OpenRouter charges your account" in question.words.text()
    assert chat.turns == [] and openrouter.chat_requests == []
    assert chat.prompt.toPlainText() == "what is 2+2?"  # the question in sight while asked
    QTest.keyClick(question.cancel, Qt.Key.Key_Return)  # Enter on the focused Cancel: no
    assert not question.isVisible() and chat.prompt.toPlainText() == "what is 2+2?"
    assert openrouter.chat_requests == [] and chat.turns == []
    QTest.keyClick(chat.prompt, Qt.Key.Key_Return)
    QTest.mouseClick(question.send, Qt.MouseButton.LeftButton)  # yes
    await until(lambda: chat.task is None and chat.turns and chat.turns[-1].done)
    assert chat.turns[0].footer.startswith("OpenRouter") and len(openrouter.chat_requests) == 1
    assert chat.prompt.toPlainText() == ""
    QTest.keyClicks(chat.prompt, "and 3+3?")  # the same day: asked once
    QTest.keyClick(chat.prompt, Qt.Key.Key_Return)
    assert not question.isVisible()
    await until(lambda: chat.task is None and len(chat.turns) == 2 and chat.turns[-1].done)
    assert len(openrouter.chat_requests) == 2
    today = router.budget.now()
    router.budget.now = lambda: today + timedelta(days=1)  # the next day: asked again
    QTest.keyClicks(chat.prompt, "and 4+4?")
    QTest.keyClick(chat.prompt, Qt.Key.Key_Return)
    assert question.isVisible() and len(openrouter.chat_requests) == 2


async def test_a_failover_found_on_the_way_asks_before_the_paid_answer(chat, exo, openrouter):
    exo.stop()  # not probed since: the route line still expects exo
    assert chat.next_line.text().startswith("Next answer: Exo Local")
    QTest.keyClicks(chat.prompt, "hello")
    QTest.keyClick(chat.prompt, Qt.Key.Key_Return)
    await until(lambda: chat.paid_question.isVisible())
    assert openrouter.chat_requests == [] and chat.turns == []
    assert "paid" in chat.next_line.text()  # what was learnt on the way
    QTest.mouseClick(chat.paid_question.send, Qt.MouseButton.LeftButton)
    await until(lambda: chat.task is None and chat.turns and chat.turns[-1].done)
    assert chat.turns[0].footer.startswith("OpenRouter ↪ failover")
    assert [m["content"] for m in openrouter.chat_requests[0].body["messages"]] == ["hello"]
