"""The chat's word on money: who the next answer will come from and whether it is paid (the
line under the transcript), and the question asked before the first paid answer of the day
(a bar in the chat window, once a day)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton

from router import HealthState, Router, charges, usd

_STATE_WORDS = {HealthState.DOWN: "is down", HealthState.NO_KEY: "has no key",
                HealthState.DISABLED: "is off", HealthState.BUSY: "is busy",
                HealthState.DEGRADED: "is held back"}


@dataclass(frozen=True, slots=True)
class NextAnswer:
    """Who the next answer comes from, in words; ``paid`` when it will cost money."""

    line: str
    paid: bool
    provider: str = ""  # its name
    why: str = ""  # why not the ones before it ("Exo Local is down")
    limit: str = ""  # the paid provider's daily USD limit, in words


def next_answer(router: Router, model: str) -> NextAnswer:
    """The route line's last part: the provider the router would pick now, from what it knows."""
    candidate = router.next_answer(model)
    if candidate is None:
        return NextAnswer("Next answer: nobody can answer now (see the tray menu)", False)
    provider = candidate.provider
    if not charges(candidate):
        return NextAnswer(f"Next answer: {provider.name}, free", False, provider.name)
    before = []
    for status in router.statuses():
        if status.id == provider.id:
            break
        if status.state in _STATE_WORDS:
            before.append(f"{status.name} {_STATE_WORDS[status.state]}")
    why = ", ".join(before) or f"{provider.name} comes first"
    limit = (f"at most {usd(provider.daily_cost_limit_usd, cents=True)} a day"
             if provider.daily_cost_limit_usd is not None else "no daily USD limit")
    return NextAnswer(f"⚠ Next answer will be paid: {provider.name} ({why}; {limit})", True,
                      provider.name, why, limit)


class PaidQuestion(QFrame):
    """"The next answer will be paid — send it?", in the chat, above the prompt."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("paidQuestion")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.words = QLabel("")
        self.words.setWordWrap(True)
        self.words.setTextFormat(Qt.TextFormat.PlainText)
        self.send = QPushButton("Send (&paid)")
        self.cancel = QPushButton("Cancel")
        row = QHBoxLayout(self)
        row.addWidget(self.words, 1)
        row.addWidget(self.send)
        row.addWidget(self.cancel)
        self._yes: Callable[[], None] | None = None
        self._no: Callable[[], None] | None = None
        self.send.clicked.connect(lambda: self._answer(self._yes))
        self.cancel.clicked.connect(lambda: self._answer(self._no))
        self.hide()

    def ask(self, answer: NextAnswer, yes: Callable[[], None], no: Callable[[], None]) -> None:
        self.words.setText(f"{answer.why}, so this answer will be paid: {answer.provider} "
                           f"charges your account ({answer.limit}). Asked once a day.")
        self._yes, self._no = yes, no
        self.show()
        self.cancel.setFocus()  # Enter does the safe thing

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter presses the focused button (Cancel at first), Esc is Cancel."""
        if event.key() == Qt.Key.Key_Escape:
            self.cancel.click()
        elif event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            (self.send if self.send.hasFocus() else self.cancel).click()
        else:
            super().keyPressEvent(event)

    def _answer(self, then: Callable[[], None] | None) -> None:
        self.hide()
        self._yes = self._no = None
        if then is not None:
            then()
