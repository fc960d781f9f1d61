"""The quick-prompt chat window: ask, watch the answer stream in, see who answered and what it
cost. Enter sends, Shift+Enter is a new line, Esc hides. The conversation goes on (messages are
sent with the history) until New chat."""

from __future__ import annotations

import asyncio
import html
import re
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, QUrl
from PySide6.QtGui import QGuiApplication, QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop.bridge import Bridge
from router import NoProviderAvailable, Result, RoutingError, router_guidance, usd

RENDER_MS = 33  # repaint a streaming answer at most ~30 times a second
_CODE = re.compile(r"```[^\n]*\n(.*?)(?:```|$)", re.DOTALL)


@dataclass
class Turn:
    prompt: str
    answer: str = ""
    thinking: str = ""  # the model's reasoning (``reasoning_content``), shown collapsed
    show_thinking: bool = False
    footer: str = ""
    error: str = ""
    attempts: str = ""
    guidance: str = ""  # what to do when nobody answered (HTML paragraphs, per provider)
    done: bool = False
    result: Result | None = field(default=None, repr=False)


def render_markdown(text: str) -> str:
    """Plain text with ``` code blocks shown monospaced (everything else escaped as is)."""
    parts, last = [], 0
    for match in _CODE.finditer(text):
        parts.append(html.escape(text[last:match.start()]).replace("\n", "<br>"))
        parts.append(f"<pre style='font-family: monospace'>{html.escape(match.group(1))}</pre>")
        last = match.end()
    parts.append(html.escape(text[last:]).replace("\n", "<br>"))
    return "".join(parts)


def thinking_html(turn: Turn, index: int) -> str:
    """The reasoning before an answer: one line to click, collapsed; the text when opened."""
    if not turn.thinking:
        return ""
    words = len(turn.thinking.split())
    if not turn.show_thinking:
        return f"<a href='think:{index}'>▸ Thinking ({words} words)</a><br>"
    return (f"<a href='think:{index}'>▾ Thinking</a><br><span style='color:gray'>"
            f"{render_markdown(turn.thinking.strip())}</span><br>")


def footer_text(result: Result, names: dict[str, str]) -> str:
    usage = result.usage
    cost = "free" if result.cost_source == "free" else usd(result.cost_usd)
    failover = " ↪ failover" if result.failed_over else ""
    ttft = f" · first token {result.ttft_ms:.0f} ms" if result.ttft_ms is not None else ""
    return (f"{names.get(result.provider_used, result.provider_used)}{failover} · "
            f"{usage.get('prompt_tokens', 0)}+{usage.get('completion_tokens', 0)} tokens · {cost}"
            f"{ttft} · {result.latency_ms / 1000:.1f} s")


def attempts_text(attempts: Any) -> str:
    return " → ".join(f"{a.provider} {a.outcome}" + (f" ({a.detail})" if a.detail else "")
                      for a in attempts)


class ChatWindow(QWidget):
    def __init__(self, bridge: Bridge):
        super().__init__()
        self.bridge = bridge
        self.setWindowTitle("Exo Bridge — Chat")
        self.resize(560, 480)
        self.turns: list[Turn] = []
        self.task: asyncio.Task[Any] | None = None
        self.names = {p.id: p.name for p in bridge.router.config.providers}
        self.model = QComboBox()
        self.model.setEditable(True)
        self.model.addItems(list(bridge.router.config.models))
        self.transcript = QTextBrowser()
        self.transcript.setOpenLinks(False)
        self.transcript.anchorClicked.connect(self._on_link)
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Ask… (Enter sends, Shift+Enter for a new line)")
        self.prompt.setMaximumHeight(90)
        self.prompt.installEventFilter(self)
        self.send = QPushButton("Send")
        self.send.clicked.connect(self.submit)
        self.new_chat = QPushButton("New chat")
        self.new_chat.clicked.connect(self.clear)
        self.status = QLabel("")
        self._layout()
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(RENDER_MS)
        self._timer.timeout.connect(self._render_if_dirty)

    def _layout(self) -> None:
        top = QHBoxLayout()
        top.addWidget(QLabel("Model"))
        top.addWidget(self.model, 1)
        top.addWidget(self.new_chat)
        bottom = QHBoxLayout()
        bottom.addWidget(self.prompt, 1)
        bottom.addWidget(self.send)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.transcript, 1)
        layout.addWidget(self.status)
        layout.addLayout(bottom)

    # -- keys -----------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        enter = (watched is self.prompt and isinstance(event, QKeyEvent)
                 and event.type() == QEvent.Type.KeyPress
                 and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                 and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if enter:
            self.submit()
            return True
        return super().eventFilter(watched, event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.hide()
            return
        super().keyPressEvent(event)

    def open(self) -> None:
        self.show()
        self.raise_()
        self.activateWindow()
        self.prompt.setFocus()

    # -- asking ---------------------------------------------------------------------------
    def submit(self) -> None:
        if self.task is not None:  # the button reads Stop while an answer streams
            self.stop()
            return
        text = self.prompt.toPlainText().strip()
        if not text:
            return
        self.prompt.clear()
        self.ask(Turn(text))

    def ask(self, turn: Turn) -> None:
        self._remember_model(self.model.currentText().strip())
        self.turns.append(turn)
        request = {"model": self.model.currentText().strip() or None,
                   "messages": self._messages()}
        self.send.setText("Stop")
        self._timer.start()
        self.task = self.bridge.run(self._stream(turn, request))
        self.task.add_done_callback(lambda _: self._finished())

    def _remember_model(self, model: str) -> None:
        """Recent pass-through ids join the aliases in the picker."""
        if model and self.model.findText(model) < 0:
            self.model.addItem(model)

    def _messages(self) -> list[dict[str, str]]:
        messages = []
        for turn in self.turns:
            messages.append({"role": "user", "content": turn.prompt})
            if turn.done and turn.answer and not turn.error:
                messages.append({"role": "assistant", "content": turn.answer})
        return messages

    async def _stream(self, turn: Turn, request: dict[str, Any]) -> None:
        try:
            async with self.bridge.router.stream(request) as stream:
                async for chunk in stream:
                    for choice in chunk["choices"]:
                        delta = choice["delta"]
                        turn.answer += delta.get("content") or ""
                        turn.thinking += delta.get("reasoning_content") or delta.get("reasoning") or ""
                        self._dirty = True
            assert stream.result is not None
            turn.result = stream.result
            turn.footer = footer_text(stream.result, self.names)
            turn.attempts = attempts_text(stream.result.attempts)
        except RoutingError as exc:
            turn.error = str(exc)
            turn.attempts = attempts_text(exc.attempts)
            if isinstance(exc, NoProviderAvailable):
                turn.guidance = "".join(f"<br>{html.escape(a.text)}<br>" for a in router_guidance(
                    self.bridge.router, exc.attempts, str(request.get("model") or "")))
        except asyncio.CancelledError:
            turn.footer = "stopped"
            raise
        finally:
            turn.done = True
            self._dirty = True

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()  # closes the stream: the upstream request is cancelled too

    def _finished(self) -> None:
        self.task = None
        self.send.setText("Send")
        self._timer.stop()
        self.redraw()
        last = self.turns[-1] if self.turns else None
        self.status.setToolTip(last.attempts if last else "")

    def clear(self) -> None:
        self.stop()
        self.turns = []
        self.redraw()

    # -- showing --------------------------------------------------------------------------
    def _render_if_dirty(self) -> None:
        if self._dirty:
            self.redraw()

    def redraw(self) -> None:
        self._dirty = False
        blocks = []
        for index, turn in enumerate(self.turns):
            blocks.append(f"<p><b>You</b><br>{render_markdown(turn.prompt)}</p>")
            if turn.error:
                blocks.append(f"<p style='color:#c62828'><b>No answer</b><br>"
                              f"{turn.guidance or html.escape(turn.attempts)}<br>"
                              f"<a href='retry:{index}'>Retry</a></p>")
                continue
            answer = render_markdown(turn.answer) or ("" if turn.thinking else "…")
            footer = html.escape(turn.footer)
            if turn.done and turn.result is not None:
                footer += f" · <a href='copy:{index}'>Copy</a>"
            blocks.append(f"<p>{thinking_html(turn, index)}{answer}<br>"
                          f"<small style='color:gray'>{footer}</small></p>")
        self.transcript.setHtml("".join(blocks))
        bar = self.transcript.verticalScrollBar()
        bar.setValue(bar.maximum())
        last = self.turns[-1] if self.turns else None
        self.status.setText(last.footer if last else "")

    def _on_link(self, url: QUrl) -> None:
        action, _, index = url.toString().partition(":")
        turn = self.turns[int(index)]
        if action == "copy":
            QGuiApplication.clipboard().setText(turn.answer)
        elif action == "think":
            turn.show_thinking = not turn.show_thinking
            self.redraw()
        elif action == "retry" and self.task is None:
            self.turns.remove(turn)
            self.ask(Turn(turn.prompt))
