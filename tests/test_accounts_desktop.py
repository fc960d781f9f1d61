"""The accounts on the desktop (offscreen Qt): the tray line says which limit and when it ends,
warnings and limits are notified, "Check accounts now" ends a credit rest, and the cost window
shows the ledger against the bill."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("PySide6", reason="the desktop extra is not installed")

from desktop.autostart import Autostart
from desktop.notify import note_for
from router import (
    AccountLimited,
    BillDrift,
    CreditAlert,
    CreditLevel,
    CreditWall,
    LimitCause,
    Reconciliation,
    Router,
)
from router.accounts.reconcile import append

ASK = {"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi"}]}
NAMES = {"openrouter": "OpenRouter"}


@pytest.fixture
def tray_for(qapp, tmp_path):
    from desktop.bridge import Bridge
    from desktop.tray import Tray

    made = []

    def build(router: Router):
        tray = Tray(Bridge(router), endpoint_url=lambda: None, endpoint_token=lambda: None,
                    autostart=Autostart(tmp_path))
        tray.starting = False
        made.append(tray)
        return tray
    yield build
    for tray in made:
        tray.timer.stop()
        tray.icon.hide()
        if tray.status_window is not None:
            tray.status_window.deleteLater()
        tray.menu.deleteLater()
        tray.deleteLater()
    qapp.processEvents()


def openrouter_line(tray) -> str:
    """The menu row and its tooltip (the row says why in a few words, the tooltip in full)."""
    return next(f"{a.text()} {a.toolTip()}" for a in tray._provider_actions
                if a.text().startswith("OpenRouter"))


async def test_the_tray_says_which_limit_and_until_when_and_check_now_ends_it(
        tray_for, make_config, exo, openrouter, hf, keys_in_env):
    config, _ = make_config()
    exo.stop()
    openrouter.account.balance_usd = 0.0
    async with Router(config) as router:
        tray = tray_for(router)
        tray.show()
        await router.chat(ASK)
        assert "out of credits, until credit is added" in openrouter_line(tray)
        assert [(n.kind, n.title) for n in tray.shown_notes] == [
            ("credit", "OpenRouter: out of credits"),
            ("failover", "Exo Local offline — failing over to Hugging Face")]
        assert tray.shown_notes[0].body.startswith("Out of credits, until credit is added")
        openrouter.account.balance_usd = 10.0
        tray.check_accounts.trigger()  # the user added credit and says so
        for _ in range(100):
            if "out of credits" not in openrouter_line(tray):
                break
            await asyncio.sleep(0.02)
        line = openrouter_line(tray)
        again = await router.chat(ASK)
    assert "out of credits" not in line and "free models 0 of 1,000 used today" in line
    assert again.provider_used == "openrouter"


async def test_a_key_nearing_its_limit_turns_yellow_with_one_warning(tray_for, make_config, exo,
                                                                    openrouter, keys_in_env):
    config, _ = make_config()
    openrouter.account.key_limit_usd, openrouter.account.usage_usd = 10.0, 8.5
    async with Router(config) as router:
        tray = tray_for(router)
        tray.show()
        await router.check_all()
        tray.refresh()
    assert [n.title for n in tray.shown_notes] == ["OpenRouter: 80% of the key limit used"]
    assert tray.shown_notes[0].body == "$1.50 left of $10.00."
    assert tray.view.light.value == "yellow" and "a key's credit is 80% used" in tray.view.tooltip
    assert "credit $1.50 of $10.00 left (80% of the way to the key's limit)" in openrouter_line(tray)


def test_note_texts_for_the_accounts():
    resets = datetime(2026, 12, 1, tzinfo=UTC)
    note = note_for(CreditAlert("openrouter", CreditWall.CREDIT_FLOOR, CreditLevel.CLOSE, 0.4, 8.0,
                                resets), NAMES)
    assert note is not None and note.kind == "credit"
    assert (note.title, note.body) == ("OpenRouter: 95% of the credit floor used",
                                       "$0.40 left of $8.00. It resets 2026-12-01 00:00 UTC.")
    free = note_for(CreditAlert("openrouter", CreditWall.FREE_REQUESTS, CreditLevel.REACHED, 0, 50),
                    NAMES)
    assert free is not None and free.title == "OpenRouter: free-model requests used up for today"
    assert note_for(AccountLimited("openrouter", LimitCause.IN_FLIGHT, None, "x"), NAMES) is None
    limited = note_for(AccountLimited("openrouter", LimitCause.KEY_LIMIT, resets,
                                      "the key's credit limit is reached, until 2026-12-01 00:00 UTC"),
                       NAMES)
    assert limited is not None and limited.body.startswith("The key's credit limit is reached, until")
    drift = note_for(BillDrift("openrouter", "2026-11-22", 0.05, 0.30), NAMES)
    assert drift is not None and drift.kind == "cost-anomaly"
    assert drift.title == "OpenRouter billed $0.3000 on 2026-11-22, the ledger recorded $0.0500"
    assert len({note.key, free.key, drift.key}) == 3  # one provider's notes do not hold each other back


async def test_the_cost_window_shows_the_ledger_against_the_bill(qapp, make_config, tmp_path):
    from desktop.bridge import Bridge
    from desktop.windows.costs import CostWindow
    from router.ledger.ledger import Ledger

    ledger = Ledger.in_dir(tmp_path / "data")
    today = datetime.now(UTC).date()
    append(ledger.directory, Reconciliation(today.isoformat(), "openrouter", 0.05, 0.30,
                                            datetime.now(UTC)))
    config, _ = make_config()
    try:
        async with Router(config) as router:
            bridge = Bridge(router)
            win = CostWindow(bridge, ledger, today=today)
            win.open()
            for _ in range(200):
                if win.bill.text():
                    break
                await asyncio.sleep(0.02)
            text, visible = win.bill.text(), win.bill.isVisible()
            win.close()
            win.deleteLater()
            bridge.deleteLater()
            qapp.processEvents()
    finally:
        ledger.close()
    assert visible
    assert text == (f"⚠ {today} openrouter: the ledger recorded $0.0500, billed $0.3000 "
                    "(drift -$0.2500, -83.3%) — the provider billed the key more or less than "
                    "we recorded")
