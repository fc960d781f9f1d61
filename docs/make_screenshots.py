"""Render the windows offscreen into docs/screenshots/ (run: .venv/bin/python -m docs.make_screenshots).

The chat window shows a real answer from a fake provider, the cost window a synthetic month."""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QApplication

OUT = Path(__file__).resolve().parent / "screenshots"


def synthetic_ledger(directory: Path):
    from router.ledger import Ledger, Row

    ledger = Ledger.in_dir(directory)
    rng = random.Random(3)
    rows = []
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    for back in range(30):
        day = today - timedelta(days=back)
        for i in range(rng.randint(20, 60)):
            provider = rng.choice(["exo"] * 5 + ["openrouter", "huggingface"])
            cost = 0.0 if provider == "exo" else rng.uniform(0.0002, 0.003)
            rows.append(Row(day.timestamp(), f"r{back}-{i}", "llama-3.2-3b", "m", provider, "ok", True,
                            True, rng.randint(50, 400), rng.randint(50, 600), cost,
                            "free" if provider == "exo" else "reported", rng.uniform(200, 2500), 90.0,
                            provider != "exo", int(provider != "exo"), "",
                            rng.uniform(0.0005, 0.002) if provider == "exo" else 0.0,
                            f"s-{back}-{i}").values())
    ledger.write_now(rows)
    return ledger


async def main() -> None:
    from desktop.bridge import Bridge
    from desktop.status_model import tray_view
    from desktop.tray import StatusWindow
    from desktop.windows.chat import ChatWindow
    from desktop.windows.costs import CostWindow
    from router import Router
    from router.config import parse_config
    from tests.conftest import config_text
    from tests.fakes.provider import FakeProvider

    OUT.mkdir(exist_ok=True)
    exo, cloud, hf = FakeProvider("exo"), FakeProvider("openrouter"), FakeProvider("huggingface")
    exo.reply = ("Here is a loop in Python:\n```python\nfor i in range(3):\n    print(i)\n```\n"
                 "It prints 0, 1 and 2.")
    config = parse_config(config_text([exo.origin], cloud.base_url, hf.base_url), "screens")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            ledger = synthetic_ledger(Path(tmp))
            async with Router(config, ledger=ledger) as router:
                bridge = Bridge(router)
                chat = ChatWindow(bridge)
                chat.show()
                chat.prompt.setPlainText("Show me a loop in Python")
                chat.submit()
                while chat.task is not None:
                    await asyncio.sleep(0.05)
                chat.prompt.setPlainText("Thanks!")
                QApplication.processEvents()
                chat.grab().save(str(OUT / "chat.png"))
                costs = CostWindow(bridge, ledger)
                costs.open()
                while not costs.rows or costs.graphs is None:
                    await asyncio.sleep(0.05)
                    QApplication.processEvents()  # the plots are built on a Qt timer
                graphs = costs.graphs
                yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
                box = graphs.main.getPlotItem().getViewBox()  # the read-out of one bucket
                graphs.hover(graphs.main, box.mapViewToScene(QPointF(graphs.centre(yesterday), 0.0)))
                QApplication.processEvents()
                costs.grab().save(str(OUT / "costs.png"))
                status = StatusWindow()
                status.show_view(tray_view(router.statuses()))
                status.resize(520, 110)
                status.show()
                QApplication.processEvents()
                status.grab().save(str(OUT / "status-window.png"))
            ledger.close()
    finally:
        for fake in (exo, cloud, hf):
            fake.close()


if __name__ == "__main__":
    app = QApplication([])
    asyncio.run(main())
    print("written to", OUT)
