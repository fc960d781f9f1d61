"""The chat window (issue 18): Markdown answers, a Copy link per code block, one footer per
answer, the model box, the keyboard, dark mode and a large font (offscreen Qt)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("PySide6", reason="the desktop extra is not installed")

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QColor, QGuiApplication, QPalette, QTextCursor, QTextTable
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from desktop.appearance import DARK, LIGHT
from desktop.windows.chat import Turn
from tests.conftest import until
from tests.test_tray_rows import activate

pytestmark = pytest.mark.usefixtures("keys_in_env")


ANSWER = """Some *emphasis* and **bold**:

- first item
- second item

| name | size |
|------|------|
| a    | 1    |

```python
print("one")
```

then

```
two = 2
three = 3
```
"""


def answered(window, text: str) -> Turn:
    turn = Turn("q", answer=text, footer="Exo Local · 1+2 tokens · free · 0.1 s", done=True)
    window.turns.append(turn)
    window.redraw()
    return turn


def fragments(document):
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            yield block, it.fragment()
            it += 1
        block = block.next()


async def test_markdown_lists_emphasis_tables_and_code_render(chat):
    answered(chat, ANSWER)
    document = chat.transcript.document()
    found = {f.text(): (block, f.charFormat()) for block, f in fragments(document)}
    assert found["emphasis"][1].fontItalic() and found["bold"][1].fontWeight() >= 700
    items = [b for b, _ in found.values() if b.textList() is not None]
    assert {b.text() for b in items} == {"first item", "second item"}
    cursor = QTextCursor(document)
    tables = []
    while not cursor.atEnd():
        table = cursor.currentTable()
        if isinstance(table, QTextTable) and table not in tables:
            tables.append(table)
        cursor.movePosition(QTextCursor.MoveOperation.NextBlock)
        if cursor.block() == document.lastBlock():
            break
    cells = [[t.cellAt(r, c).firstCursorPosition().block().text() for r in range(t.rows())
              for c in range(t.columns())] for t in tables]
    assert ["name", "size", "a", "1"] in cells
    code = next(fmt for text, (_, fmt) in found.items() if text.startswith('print("one")'))
    assert code.fontFixedPitch() or "monospace" in code.fontFamilies()
    assert "*" not in chat.transcript.toPlainText()  # no raw Markdown left


async def test_copy_puts_exactly_that_code_block_on_the_clipboard(chat):
    answered(chat, ANSWER)
    html = chat.transcript.toHtml()
    assert 'href="code:0"' in html and 'href="code:1"' in html
    chat._on_link(QUrl("code:1"))
    assert QGuiApplication.clipboard().text() == "two = 2\nthree = 3"
    chat._on_link(QUrl("code:0"))
    assert QGuiApplication.clipboard().text() == 'print("one")'


async def test_one_footer_per_answer_and_the_route_above_the_input(chat, exo):
    for text in ("first", "second"):
        chat.prompt.setPlainText(text)
        chat.submit()
        await until(lambda: chat.task is None)
    text = chat.transcript.toPlainText()
    footers = [line for line in text.splitlines() if "tokens" in line]
    assert len(footers) == 2 and all(f.startswith("Exo Local") for f in footers)
    assert "tokens" not in chat.status.text()
    assert chat.status.text().startswith("llama-3.2-3b → Exo Local (mlx-community/")
    assert "→ OpenRouter (meta-llama/llama-3.2-3b-instruct)" in chat.status.text()


async def test_model_box_lists_aliases_then_each_providers_models(chat, exo):
    router = chat.bridge.router
    await router.probe(router.config.provider("exo"))
    chat.refresh_models()
    box = chat.model
    texts = [box.itemText(i) for i in range(box.count())]
    assert texts[0] == "llama-3.2-3b"
    heading = texts.index("— Exo Local —")
    assert box.model().item(heading).flags() == Qt.ItemFlag.NoItemFlags  # not a choice
    listed = texts[heading + 1:]
    assert set(exo.models) - set(router.config.models) <= set(listed)
    tip = box.itemData(texts.index("mlx-community/Qwen3-8B-4bit"), Qt.ItemDataRole.ToolTipRole)
    assert tip == "served by Exo Local"
    box.setCurrentText("mlx-community/Qwen3-8B-4bit")
    assert chat.status.text() == "mlx-community/Qwen3-8B-4bit → Exo Local (as is)"


async def test_esc_stops_an_answer_then_closes(chat, exo):
    exo.chunk_delay_s = 0.1
    chat.prompt.setPlainText("hello")
    QTest.keyClick(chat.prompt, Qt.Key.Key_Return)  # Enter sends
    await until(lambda: chat.turns and "Hello" in chat.turns[0].answer)
    QTest.keyClick(chat.prompt, Qt.Key.Key_Escape)
    await until(lambda: chat.task is None)
    assert chat.turns[0].footer == "stopped" and chat.isVisible()
    QTest.keyClick(chat.prompt, Qt.Key.Key_Escape)
    assert not chat.isVisible()


async def test_tab_order_from_the_prompt(qapp, chat):
    activate(qapp, chat)
    chat.prompt.setFocus()
    seen = []
    for _ in range(5):
        focused = QApplication.focusWidget()
        seen.append(focused)
        QTest.keyClick(focused, Qt.Key.Key_Tab)
    owner = [w if w in (chat.prompt, chat.send, chat.new_chat, chat.transcript) else
             chat.model if chat.model.isAncestorOf(w) or w is chat.model else w for w in seen]
    assert owner == [chat.prompt, chat.send, chat.model, chat.new_chat, chat.transcript]
    assert chat.prompt.toPlainText() == ""  # Tab moved on, it typed nothing


async def test_dark_palette_changes_the_code_background(qapp, chat):
    answered(chat, ANSWER)
    assert f'bgcolor="{LIGHT.code_background}"' in chat.transcript.toHtml()
    before = qapp.palette()
    try:
        qapp.setPalette(QPalette(QColor("#2b2d31")))
        qapp.processEvents()
        html = chat.transcript.toHtml()
        assert f'bgcolor="{DARK.code_background}"' in html
        assert f'bgcolor="{LIGHT.code_background}"' not in html
    finally:
        qapp.setPalette(before)
        qapp.processEvents()


async def test_prompt_has_room_for_lines_at_a_large_font(qapp, chat):
    font = chat.font()
    font.setPointSizeF(font.pointSizeF() * 2)  # as at a 2x scale: nothing may clip
    chat.setFont(font)
    qapp.processEvents()
    lines = chat.prompt.fontMetrics().lineSpacing()
    assert chat.prompt.maximumHeight() >= 4 * lines  # a fixed 90 px held 3 lines at most
    assert chat.prompt.minimumHeight() >= 2 * lines
    chat.adjustSize()
    assert chat.width() >= chat.minimumSizeHint().width()
    for button in (chat.send, chat.new_chat):
        assert button.width() >= button.sizeHint().width()

