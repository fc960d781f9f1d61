"""The quick-prompt chat window: ask, watch the answer stream in (Markdown: lists, emphasis,
tables, code blocks with a Copy link each), see who answered and what it cost under each answer.
Enter sends, Shift+Enter is a new line, Tab moves on, Esc stops an answer and then hides the
window. The conversation goes on (messages are sent with the history) until New chat."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, QUrl
from PySide6.QtGui import QFont, QGuiApplication, QKeyEvent, QStandardItemModel, QTextDocument
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

from desktop.appearance import Colours, colours
from desktop.bridge import Bridge
from desktop.present import present
from desktop.windows.chat_paid import NextAnswer, PaidQuestion, next_answer
from router import (
    PAID_WAITS,
    ChatStream,
    Config,
    NoProviderAvailable,
    PromptProgress,
    Result,
    RoutingError,
    describe_attempts,
    footer_text,
    progress_text,
    router_guidance,
)

RENDER_MS = 33  # repaint a streaming answer at most ~30 times a second
_CODE = re.compile(r"```[^\n]*\n(.*?)(?:```|$)", re.DOTALL)
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.DOTALL)
QT_LINK_BLUE = "color:#0000ff;"  # what QTextDocument.toHtml writes for a Markdown link
PROMPT_LINES = 4  # the prompt box grows to this many lines of the current font


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
    reading: str = ""  # before the first token: "exo: reading the prompt 63%"
    done: bool = False
    result: Result | None = field(default=None, repr=False)


def render_markdown(text: str) -> str:
    """Plain text (a prompt, as typed) with ``` code blocks shown monospaced on the code
    background (everything else escaped as is)."""
    parts, last = [], 0
    for match in _CODE.finditer(text):
        parts.append(html.escape(text[last:match.start()]).replace("\n", "<br>"))
        parts.append(code_html(match.group(1), None, colours()))
        last = match.end()
    parts.append(html.escape(text[last:]).replace("\n", "<br>"))
    return "".join(parts)


def code_html(code: str, copy_index: int | None, tint: Colours) -> str:
    """One code block: monospaced on a tinted background, with a Copy link (``code:N``)."""
    copy = "" if copy_index is None else (
        f"<tr><td align='right'><a href='code:{copy_index}' style='color:{tint.link}'>"
        f"<small>Copy</small></a></td></tr>")
    return (f"<table width='100%' cellspacing='0' cellpadding='6' bgcolor='{tint.code_background}'>"
            f"{copy}<tr><td><pre style='font-family: monospace'>{html.escape(code)}</pre>"
            f"</td></tr></table>")


@lru_cache(maxsize=256)
def _prose_html(text: str, link: str) -> str:
    """Markdown prose (lists, emphasis, tables, links, inline code) as Qt's own Markdown reader
    renders it (GitHub's dialect), as HTML to place in the transcript."""
    document = QTextDocument()
    document.setMarkdown(text, QTextDocument.MarkdownFeature.MarkdownDialectGitHub)
    found = _BODY.search(document.toHtml())
    body = found.group(1).strip() if found else html.escape(text)
    return body.replace(QT_LINK_BLUE, f"color:{link};")


def markdown_html(text: str, code: list[str] | None, tint: Colours) -> str:
    """An answer in Markdown as HTML; each fenced code block's text is appended to ``code``
    and its Copy link is ``code:<its index there>`` (``code`` None: no Copy links)."""
    parts, last = [], 0
    for match in _CODE.finditer(text):
        if prose := text[last:match.start()].strip():
            parts.append(_prose_html(prose, tint.link))
        block = match.group(1).removesuffix("\n")
        parts.append(code_html(block, None if code is None else len(code), tint))
        if code is not None:
            code.append(block)
        last = match.end()
    if prose := text[last:].strip():
        parts.append(_prose_html(prose, tint.link))
    return "".join(parts)


def thinking_html(turn: Turn, index: int, tint: Colours | None = None) -> str:
    """The reasoning before an answer: one line to click, collapsed; the text when opened."""
    if not turn.thinking:
        return ""
    muted = (tint or colours()).muted
    words = len(turn.thinking.split())
    if not turn.show_thinking:
        return f"<a href='think:{index}'>▸ Thinking ({words} words)</a><br>"
    return (f"<a href='think:{index}'>▾ Thinking</a><br><span style='color:{muted}'>"
            f"{render_markdown(turn.thinking.strip())}</span><br>")


def route_text(model: str, config: Config, known: dict[str, str]) -> str:
    """Where a request for ``model`` goes: an alias's providers in order, or who lists an id."""
    names = {p.id: p.name for p in config.providers}
    alias = config.models.get(model)
    if alias is not None:
        steps = [f"{p.name} ({alias.ids[p.id][0]})" for p in config.providers
                 if p.enabled and alias.ids.get(p.id)]
        return f"{model} → " + " → ".join(steps) if steps else f"{model}: no provider serves it"
    if not model:
        return "the default model"
    owner = known.get(model)
    if owner is not None:
        return f"{model} → {names.get(owner, owner)} (as is)"
    return f"{model} → passed as is to the providers that may list it"


class ModelBox(QComboBox):
    """The model picker: the aliases, recent ids, then each provider's models under its name.
    Filled from what the router already knows (no I/O), again each time it opens."""

    def __init__(self, fill: Callable[[], None]):
        super().__init__()
        self._fill = fill

    def showPopup(self) -> None:
        self._fill()
        super().showPopup()


class ChatWindow(QWidget):
    def __init__(self, bridge: Bridge):
        super().__init__()
        self.bridge = bridge
        self.setWindowTitle("Exo Bridge — Chat")
        self.resize(560, 480)
        self.turns: list[Turn] = []
        self.task: asyncio.Task[Any] | None = None
        self.stream: ChatStream | None = None  # the answer streaming in now
        self.names = {p.id: p.name for p in bridge.router.config.providers}
        self.code: list[str] = []  # the code blocks shown, for their Copy links
        self.recent: list[str] = []  # pass-through ids asked for, shown after the aliases
        self._listed: tuple[Any, ...] | None = None
        self.model = ModelBox(self.refresh_models)
        self.model.setEditable(True)
        self.model.setMaxVisibleItems(20)
        self.refresh_models()
        self.model.currentTextChanged.connect(lambda _text: self._show_route())
        self.transcript = QTextBrowser()
        self.transcript.setOpenLinks(False)
        self.transcript.anchorClicked.connect(self._on_link)
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Ask… (Enter sends, Shift+Enter for a new line)")
        self.prompt.setTabChangesFocus(True)
        self.prompt.installEventFilter(self)
        self._fit_prompt()
        self.send = QPushButton("Send")
        self.send.clicked.connect(self.submit)
        self.new_chat = QPushButton("&New chat")
        self.new_chat.clicked.connect(self.clear)
        self.status = QLabel("")  # the chosen model's route (each answer has its own footer)
        self.status.setWordWrap(True)
        self.next_line = QLabel("")  # who the next answer comes from; paid said plainly
        self.next_line.setWordWrap(True)
        self.paid_question = PaidQuestion()  # before the first paid answer of the day
        self.paid_day: date | None = None  # the day the user said yes to paid answers
        for signal in (bridge.health_changed, bridge.request_finished, bridge.failover):
            signal.connect(lambda _event: self._show_route())
        self._layout()
        self._show_route()
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(RENDER_MS)
        self._timer.timeout.connect(self._render_if_dirty)
        bridge.prompt_progress.connect(self._on_prompt_progress)

    def _layout(self) -> None:
        top = QHBoxLayout()
        label = QLabel("&Model")
        label.setBuddy(self.model)
        top.addWidget(label)
        top.addWidget(self.model, 1)
        top.addWidget(self.new_chat)
        bottom = QHBoxLayout()
        bottom.addWidget(self.prompt, 1)
        bottom.addWidget(self.send)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.transcript, 1)
        layout.addWidget(self.status)
        layout.addWidget(self.next_line)
        layout.addWidget(self.paid_question)
        layout.addLayout(bottom)
        # Tab from the prompt: Send, the model, New chat, the answers (their links), back.
        for first, second in ((self.prompt, self.send), (self.send, self.model),
                              (self.model, self.new_chat), (self.new_chat, self.transcript)):
            QWidget.setTabOrder(first, second)

    def _fit_prompt(self) -> None:
        """Room for a few lines of the current font (a fixed pixel height would clip text at a
        larger font or scale)."""
        lines = self.prompt.fontMetrics().lineSpacing()
        frame = 2 * (self.prompt.frameWidth() + round(self.prompt.document().documentMargin()))
        self.prompt.setMinimumHeight(2 * lines + frame)
        self.prompt.setMaximumHeight(PROMPT_LINES * lines + frame)

    # -- the models -----------------------------------------------------------------------
    def refresh_models(self) -> None:
        """Aliases first, recent ids, then every provider's known models under its name
        (from the router's catalogue: what exo's probes and the cloud's lists said)."""
        config = self.bridge.router.config
        known = self.bridge.router.known_models()
        aliases = list(config.models)
        recent = [m for m in self.recent if m not in config.models]
        groups = []
        for provider in config.providers:
            ids = sorted(m for m, owner in known.items() if owner == provider.id
                         and m not in config.models and m not in recent)
            if ids:
                groups.append((provider.name, ids))
        listed = (tuple(aliases), tuple(recent), tuple((n, tuple(i)) for n, i in groups))
        if listed == self._listed:
            return
        self._listed = listed
        text = self.model.currentText()
        self.model.blockSignals(True)
        self.model.clear()
        for alias in aliases:
            self._add_model(alias, route_text(alias, config, known))
        for model in recent:
            self._add_model(model, "asked for recently")
        for name, ids in groups:
            self.model.insertSeparator(self.model.count())
            self._add_heading(name)
            for model in ids:
                self._add_model(model, f"served by {name}")
        self.model.setCurrentText(text or (aliases[0] if aliases else ""))
        self.model.blockSignals(False)

    def _add_model(self, model: str, tip: str) -> None:
        self.model.addItem(model)
        self.model.setItemData(self.model.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)

    def _add_heading(self, name: str) -> None:
        """A provider's name over its models: not a choice."""
        self.model.addItem(f"— {name} —")
        items = self.model.model()
        assert isinstance(items, QStandardItemModel)
        item = items.item(self.model.count() - 1)
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        font = QFont(item.font())
        font.setBold(True)
        item.setFont(font)

    def _show_route(self) -> None:
        model = self.model.currentText().strip()
        text = route_text(model, self.bridge.router.config, self.bridge.router.known_models())
        if self.status.text() != text:
            self.status.setText(text)
        coming = next_answer(self.bridge.router, model)
        if self.next_line.text() != coming.line:
            self.next_line.setText(coming.line)
            font = self.next_line.font()
            font.setBold(coming.paid)
            self.next_line.setFont(font)

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
            self.escape()
            return
        super().keyPressEvent(event)

    def escape(self) -> None:
        """Esc: stop the answer streaming in; with none, hide the window."""
        if self.task is not None:
            self.stop()
        else:
            self.hide()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self.redraw()  # light or dark: the code background, the footers, the links
        elif event.type() == QEvent.Type.FontChange:
            self._fit_prompt()
        super().changeEvent(event)

    def take_config(self) -> None:
        """The router's config changed in place (Settings): names, models and the route line
        follow it; the conversation stays."""
        self.names = {p.id: p.name for p in self.bridge.router.config.providers}
        self.refresh_models()
        self._show_route()

    def open(self) -> None:
        self.refresh_models()
        self._show_route()
        present(self)  # un-minimised too: a second launch or the icon must show it
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
        """Send the turn; when its answer would be the first paid one of the day, ask first."""
        model = self.model.currentText().strip()
        self._remember_model(model)
        coming = next_answer(self.bridge.router, model)
        if coming.paid and not self.paid_agreed():
            self._ask_to_pay(turn, coming)
            return
        self.turns.append(turn)
        request = {"model": model or None, "messages": self._messages()}
        self.send.setText("Stop")
        self._timer.start()
        self.task = self.bridge.run(self._stream(turn, request, paid=self.paid_agreed()))
        self.task.add_done_callback(lambda _: self._finished())

    def paid_agreed(self) -> bool:
        """Whether the user said yes to paid answers today (the budget's day, UTC)."""
        return self.paid_day == self.bridge.router.budget.now().date()

    def _ask_to_pay(self, turn: Turn, coming: NextAnswer) -> None:
        """The question stays in the prompt box while the chat asks (seen, and kept on No)."""
        if not self.prompt.toPlainText().strip():
            self.prompt.setPlainText(turn.prompt)

        def yes() -> None:
            self.paid_day = self.bridge.router.budget.now().date()
            if self.prompt.toPlainText().strip() == turn.prompt.strip():
                self.prompt.clear()
            self.ask(Turn(turn.prompt))

        def no() -> None:
            self.prompt.setFocus()

        self.paid_question.ask(coming, yes, no)

    def _remember_model(self, model: str) -> None:
        """Recent pass-through ids join the aliases in the picker."""
        if model and model not in self.bridge.router.config.models and model not in self.recent:
            self.recent.insert(0, model)
            del self.recent[10:]
            self.refresh_models()

    def _messages(self) -> list[dict[str, str]]:
        messages = []
        for turn in self.turns:
            messages.append({"role": "user", "content": turn.prompt})
            if turn.done and turn.answer and not turn.error:
                messages.append({"role": "assistant", "content": turn.answer})
        return messages

    async def _stream(self, turn: Turn, request: dict[str, Any], paid: bool = True) -> None:
        try:
            async with self.bridge.router.stream(request, paid=paid) as stream:
                self.stream = stream
                async for chunk in stream:
                    turn.reading = ""
                    for choice in chunk["choices"]:
                        delta = choice["delta"]
                        turn.answer += delta.get("content") or ""
                        turn.thinking += delta.get("reasoning_content") or delta.get("reasoning") or ""
                        self._dirty = True
            assert stream.result is not None
            turn.result = stream.result
            turn.footer = footer_text(stream.result, self.names.get(stream.result.provider_used,
                                                                   stream.result.provider_used))
            turn.attempts = describe_attempts(stream.result.attempts, " → ")
        except RoutingError as exc:
            if not paid and any(a.detail == PAID_WAITS for a in exc.attempts):
                self._paid_waits(turn)  # the free way failed on the way: ask, then send
                return
            turn.error = str(exc)
            turn.attempts = describe_attempts(exc.attempts, " → ")
            if isinstance(exc, NoProviderAvailable):
                turn.guidance = "".join(f"<br>{html.escape(a.text)}<br>" for a in router_guidance(
                    self.bridge.router, exc.attempts, str(request.get("model") or "")))
        except asyncio.CancelledError:
            turn.footer = "stopped"
            raise
        finally:
            self.stream = None
            turn.done = True
            turn.reading = ""
            self._dirty = True

    def _paid_waits(self, turn: Turn) -> None:
        """Only a paid provider could answer this turn (found out on the way): it leaves the
        transcript, and the user is asked before it is sent again."""
        if turn in self.turns:
            self.turns.remove(turn)
        self._show_route()
        coming = next_answer(self.bridge.router, self.model.currentText().strip())
        if not coming.paid:  # what is known now does not say who: say what happened
            coming = NextAnswer("", True, "a paid provider", "The free providers did not answer",
                                "within its daily limits")
        self._ask_to_pay(turn, coming)

    def _on_prompt_progress(self, event: PromptProgress) -> None:
        """How far the provider has read this answer's prompt, until its first token."""
        turn = self.turns[-1] if self.turns else None
        if self.stream is None or event.request_id != self.stream.request_id or turn is None \
                or turn.answer or turn.thinking:
            return
        turn.reading = progress_text(self.names.get(event.provider, event.provider), event.percent)
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
        self.status.setToolTip(f"Last answer: {last.attempts}" if last and last.attempts else "")

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
        tint = colours(self.palette())
        self.code = []
        blocks = []
        for index, turn in enumerate(self.turns):
            blocks.append(f"<p><b>You</b><br>{render_markdown(turn.prompt)}</p>")
            if turn.error:
                blocks.append(f"<p style='color:#c62828'><b>No answer</b><br>"
                              f"{turn.guidance or html.escape(turn.attempts)}<br>"
                              f"<a href='retry:{index}'>Retry</a></p>")
                continue
            answer = markdown_html(turn.answer, self.code, tint) or (
                "" if turn.thinking else f"<p style='color:{tint.muted}'>{html.escape(turn.reading)}</p>"
                if turn.reading else "<p>…</p>")
            footer = html.escape(turn.footer)
            if turn.done and turn.result is not None:
                footer += f" · <a href='copy:{index}' style='color:{tint.link}'>Copy answer</a>"
            if thinking := thinking_html(turn, index, tint):
                blocks.append(f"<p>{thinking}</p>")
            blocks.append(answer)
            if footer:  # one per answer: who answered, tokens, cost, time
                blocks.append(f"<p><small style='color:{tint.muted}'>{footer}</small></p>")
        self.transcript.setHtml("".join(blocks))
        bar = self.transcript.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _on_link(self, url: QUrl) -> None:
        action, _, index = url.toString().partition(":")
        if action == "code":
            QGuiApplication.clipboard().setText(self.code[int(index)])
            return
        turn = self.turns[int(index)]
        if action == "copy":
            QGuiApplication.clipboard().setText(turn.answer)
        elif action == "think":
            turn.show_thinking = not turn.show_thinking
            self.redraw()
        elif action == "retry" and self.task is None:
            self.turns.remove(turn)
            self.ask(Turn(turn.prompt))
