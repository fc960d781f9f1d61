"""The exo companion in the tray (offscreen Qt) and the chat window, against the simulated
cluster: the cluster submenu, an offer with its menu item and its notification button, "back to
free", and the chat window's thinking and Stop. What the tray shows is also tested without Qt."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("PySide6", reason="the desktop extra is not installed")

from desktop.cluster_model import Act, Item, cluster_menu, warming_note_line
from desktop.notify import note_for
from router import (
    ClusterProblem,
    ModelWarming,
    NodeChanged,
    Problem,
    Router,
    Stage,
    Warming,
    parse_config,
)
from router.config import ProviderConfig
from router.providers.exo_state import parse_catalogue, parse_cluster
from tests.conftest import config_text, until
from tests.fakes.exo_cluster import LLAMA, QWEN, FakeCluster
from tests.test_desktop import session_bus, tray_for  # noqa: F401

pytestmark = pytest.mark.usefixtures("keys_in_env")
EXO = ProviderConfig("exo", "exo", "Exo Local", ("http://x",))
ASK_QWEN = {"model": "qwen3-8b", "messages": [{"role": "user", "content": "hi"}]}


def seen_cluster():
    cluster = FakeCluster(download_speed=1)
    cluster.load_instance(LLAMA)
    cluster.place({"model_id": QWEN})
    for _ in range(3):
        cluster.step(0.1)
    return parse_cluster(cluster.state(), parse_catalogue(cluster.catalogue()))


def test_the_cluster_submenu_and_its_actions():
    cluster = seen_cluster()
    offer = Warming("exo", "m/big", "Big", Stage.OFFERED, "4.6 GB on Mac mini")
    problem = Problem("exo", QWEN, "Qwen3 8B", "n1", "Mac mini", "loading stuck at 5/36 layers for 2 min",
                      "inst-1", "stuck")
    view = cluster_menu((EXO, cluster), [offer], [problem])
    assert view is not None
    assert view.title == "Exo Local cluster: 2 nodes, 1 model ready"
    texts = [item.text for item in view.items]
    assert texts[0].startswith("Mac mini · ") and "Llama 3.2 3B (ready)" in texts[0]
    assert "Qwen3 8B (downloading 0% · 0.0 MB/s" in texts[0]
    assert texts[1].startswith("MacBook Pro · ") and texts[1].endswith(" · no model")
    assert texts[2].startswith("Qwen3 8B on Mac mini: 0% · 0.0 MB/s · ")
    assert Item("Load Big on exo (4.6 GB on Mac mini)", Act.WARM, "m/big") in view.items
    assert Item("Don't load Big", Act.DECLINE, "m/big") in view.items
    assert "⚠ Qwen3 8B on Mac mini: loading stuck at 5/36 layers for 2 min" in texts
    assert Item("Reload Qwen3 8B on exo", Act.RELOAD, QWEN) in view.items
    assert Item("Unload Qwen3 8B (free its memory)", Act.UNLOAD, QWEN) in view.items
    assert [i.act for i in view.main] == [Act.WARM, Act.RELOAD]  # in the main menu too
    assert cluster_menu(None) is None


def test_warming_in_the_tooltip():
    assert warming_note_line([Warming("exo", QWEN, "Qwen3 8B", Stage.LOADING, "12/36 layers")]) == \
        "warming Qwen3 8B: loading 12/36 layers"
    assert warming_note_line([Warming("exo", QWEN, "Qwen3 8B", Stage.OFFERED, "x")]) is None


def test_the_notes_of_the_companion():
    names = {"exo": "Exo Local"}
    ready = note_for(ModelWarming("exo", LLAMA, "Llama 3.2 3B", Stage.READY), names)
    assert ready.title == "Llama 3.2 3B is ready on exo — back to free" and ready.kind == "warm"
    offer = note_for(ModelWarming("exo", QWEN, "Qwen3 8B", Stage.OFFERED, "4.6 GB on Mac mini"), names)
    assert (offer.title, offer.action, offer.act, offer.model) == \
        ("Load Qwen3 8B on exo?", "Load on exo", "warm", QWEN)
    failed = note_for(ModelWarming("exo", QWEN, "Qwen3 8B", Stage.FAILED, "No cycles ..."), names)
    assert failed.title == "Qwen3 8B cannot be loaded on exo" and failed.body == "No cycles ..."
    assert note_for(ModelWarming("exo", QWEN, "Qwen3 8B", Stage.LOADING), names) is None
    gone = note_for(NodeChanged("exo", "n1", "Mac mini", joined=False), names)
    back = note_for(NodeChanged("exo", "n1", "Mac mini", joined=True), names)
    assert (gone.title, back.title, gone.kind) == ("Mac mini dropped out of the exo cluster",
                                                   "Mac mini is back in the exo cluster", "cluster")
    problem = Problem("exo", QWEN, "Qwen3 8B", "n1", "Mac mini", "runner failed: OOM", "i1")
    stuck = note_for(ClusterProblem(problem), names)
    assert (stuck.title, stuck.body, stuck.action, stuck.act) == \
        ("Qwen3 8B is stuck on exo", "Mac mini: runner failed: OOM", "Reload on exo", "reload")
    assert note_for(ClusterProblem(problem, cleared=True), names) is None


@pytest.fixture
async def router(exo_cluster, openrouter, hf):
    text = config_text([exo_cluster.origin], openrouter.base_url, hf.base_url, extra=(
        f'\n[models."qwen3-8b"]\nexo = "{QWEN}"\nopenrouter = "qwen/qwen3-8b"\n'))
    async with Router(parse_config(text, "t")) as running:
        running.companion.warm_probe_s = 0.1
        running.companion.start()
        yield running



async def test_the_tray_offers_a_model_and_loads_it_from_its_menu(tray_for, router, exo_cluster):  # noqa: F811
    tray = tray_for(router)
    tray.show()
    assert (await router.chat(ASK_QWEN)).provider_used == "openrouter"
    await until(lambda: any(n.title == "Load Qwen3 8B on exo?" for n in tray.shown_notes))
    tray.refresh()
    assert tray.cluster.entry.isVisible() and tray.cluster.entry.text().startswith("Exo Local cluster: ")
    [offer] = tray.cluster.main_actions
    assert offer.text().startswith("Load Qwen3 8B on exo (4.6 GB on Mac mini")
    submenu = [a.text() for a in tray.cluster.submenu.actions()]
    assert any(t.startswith("Mac mini · ") for t in submenu) and offer.text() in submenu
    assert exo_cluster.cluster.placed == []
    offer.trigger()
    await until(lambda: any(n.title == "Qwen3 8B is ready on exo — back to free" for n in tray.shown_notes))
    assert (await router.chat(ASK_QWEN)).provider_used == "exo"
    tray.refresh()
    assert tray.cluster.main_actions == []


async def test_the_notifications_button_loads_the_model(session_bus, tray_for, router,  # noqa: F811
                                                        exo_cluster):
    from desktop.notify import NativeNotifications

    native = NativeNotifications()
    assert await native.available()
    tray = tray_for(router)
    tray.use_native_notifications(native)
    await router.chat(ASK_QWEN)
    await until(lambda: any(s == "Load Qwen3 8B on exo?" for _, s, _ in session_bus.received))
    assert exo_cluster.cluster.placed == []
    session_bus.press("Load on exo")
    # the D-Bus press, the placement, the fake's download and load: a loaded machine (the suite
    # runs on four workers) may take longer than the usual ten seconds
    await until(lambda: QWEN in exo_cluster.cluster.ready_models(), 30)
    await until(lambda: any(s == "Qwen3 8B is ready on exo — back to free"
                            for _, s, _ in session_bus.received), 30)
    await native.close()


async def test_chat_shows_thinking_collapsed_and_stop_cancels_on_exo(qapp, router, exo_cluster):
    from PySide6.QtCore import QUrl

    from desktop.bridge import Bridge
    from desktop.windows.chat import ChatWindow, Turn

    exo_cluster.thinking = "First I consider the greeting ."
    bridge = Bridge(router)
    window = ChatWindow(bridge)
    try:
        window.ask(Turn("hi"))
        await until(lambda: window.task is None)
        turn = window.turns[-1]
        assert turn.thinking.strip() == "First I consider the greeting ." and turn.answer.strip()
        shown = window.transcript.toPlainText()
        assert "▸ Thinking (6 words)" in shown and "consider the greeting" not in shown
        window._on_link(QUrl("think:0"))
        assert "▾ Thinking\nFirst I consider the greeting ." in window.transcript.toPlainText()
        exo_cluster.chunk_delay_s = 1.0  # a slow answer: Stop must reach exo, by its id
        window.ask(Turn("again"))
        await until(lambda: bool(window.turns[-1].answer or window.turns[-1].thinking))
        window.stop()
        await until(lambda: window.task is None)
        await until(lambda: bool(exo_cluster.cluster.cancelled))
        assert window.turns[-1].footer == "stopped"
        assert any(p.startswith("/v1/cancel/") for p in exo_cluster.hits)
    finally:
        window.close()
        bridge.close()
        window.deleteLater()
        bridge.deleteLater()
        qapp.processEvents()
