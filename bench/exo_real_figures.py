"""Issue 27's figures, against exo's own API server and master (``shared/real_exo``).

    .venv/bin/python -m bench.exo_real_figures [--outages 3] [--prefill-s 40] [--probe-s 5]
                                               [--gap-s 61]

1. exo going away while nothing is asked: its process ends; the time until the tray would turn
   yellow (the health the tray shows: ``desktop.status_model.tray_view`` over the router's
   statuses, refreshed on every router event as the tray is) and until the notification the
   tray would show ("exo went offline": ``desktop.notify.note_for`` through its ``Debouncer``).
   Then exo starts again on the same port: the time from its API answering to "exo is back"
   and to "... requests are free again" (its model loaded: 0.5 s in the harness).
   exo probed every ``--probe-s`` seconds (the default config's interval: 5 s).
2. A prompt exo reads for ``--prefill-s`` seconds (one ``: prefill_progress`` report a second,
   the shape a Mac sends for a long prompt), with the default ``first_token_timeout_s`` (30 s):
   who answered, the time to the first token, the progress reports seen, what it cost.
The fake cloud is tests/fakes (OpenRouter's shape); nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")

from desktop.notify import WINDOW_S, Debouncer, note_for
from desktop.status_model import Light, tray_view
from router import PromptProgress, Router, Timing, parse_config
from tests.fakes.provider import FakeProvider
from tests.real_exo import LLAMA_1B, RealExo, build_venv, harness_dir, one_node

KEY = "sk-or-bench-0123456789abcdef"
FREE = "Exo Local is back — requests are free again"


def config_for(exo_url: str, cloud_url: str) -> str:
    return textwrap.dedent(f"""\
        [[providers]]
        id = "exo"
        kind = "exo"
        name = "Exo Local"
        base_urls = ["{exo_url}"]
        priority = 0

        [[providers]]
        id = "openrouter"
        kind = "openrouter"
        name = "OpenRouter"
        base_url = "{cloud_url}"
        priority = 1
        paid = true
        api_key_env = "BENCH_OPENROUTER_KEY"

        [models."llama-1b"]
        exo = "{LLAMA_1B}"
        openrouter = "meta-llama/llama-3.2-1b-instruct"
        """)


class Watcher:
    """What the tray would show, from the router's events: the light and the notes."""

    def __init__(self, router: Router):
        self.router = router
        self.names = {p.id: p.name for p in router.config.providers}
        self.debouncer = Debouncer()
        self.notes: list[tuple[float, str]] = []
        self.lights: list[tuple[float, Light]] = []
        router.subscribe(self.on_event)

    def on_event(self, event: object) -> None:
        now = time.monotonic()
        light = tray_view(self.router.statuses()).light
        if not self.lights or self.lights[-1][1] is not light:
            self.lights.append((now, light))
        note = note_for(event, self.names)
        if note is not None and self.debouncer.offer(note):
            self.notes.append((now, note.title))

    def first_note(self, since: float, starts: str) -> float | None:
        return next((t - since for t, title in self.notes if t >= since and title.startswith(starts)),
                    None)

    def first_light(self, since: float, light: Light) -> float | None:
        return next((t - since for t, lit in self.lights if t >= since and lit is light), None)


async def first_answer(url: str) -> float:
    """When exo's API first answers ``GET /node_id`` (polled every 20 ms while it starts)."""
    import urllib.request

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/node_id", timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    while not await asyncio.to_thread(answers):
        await asyncio.sleep(0.02)
    return time.monotonic()


async def wait_for(check: Any, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not check():
        await asyncio.sleep(0.02)


async def outages(exo: RealExo, cloud: FakeProvider, count: int, probe_s: float,
                  gap_s: float) -> None:
    timing = Timing(exo_probe_interval_s=probe_s)
    async with Router(parse_config(config_for(exo.url, cloud.base_url), "bench"),
                      timing=timing) as router:
        watch = Watcher(router)
        router.start_probes()
        await wait_for(lambda: watch.lights and watch.lights[-1][1] is Light.GREEN, 30)
        offline, yellow, back, free = [], [], [], []
        for index in range(count):
            # apart by more than the notes' debounce window (a storm is held, by design), at a
            # random point of the probes' cycle
            await asyncio.sleep(random.uniform(0, probe_s) + (1 if index == 0 else gap_s))
            gone = time.monotonic()
            exo.down()
            await wait_for(lambda g=gone: watch.first_note(g, "Exo Local went offline") is not None,
                           probe_s * 3 + 10)
            offline.append(watch.first_note(gone, "Exo Local went offline"))
            yellow.append(watch.first_light(gone, Light.YELLOW))
            answering = asyncio.ensure_future(first_answer(exo.url))
            await asyncio.to_thread(exo.start, one_node())
            up = await answering
            await wait_for(lambda u=up: watch.first_note(u, FREE) is not None, probe_s * 3 + 10)
            back.append(watch.first_note(up, "Exo Local is back"))
            free.append(watch.first_note(up, FREE))
        print(f"exo probed every {probe_s:g} s; {count} outages (exo's process ended, then "
              "started again on the same port)")
        for label, values in (("exo gone -> tray yellow", yellow),
                              ("exo gone -> 'exo went offline' notification", offline),
                              ("exo's API answering again -> 'exo is back' notification", back),
                              ("exo's API answering again -> '... requests are free again'", free)):
            seen = [v for v in values if v is not None]
            text = ", ".join(f"{v:.2f}" for v in seen)
            missing = f" ({len(values) - len(seen)} never seen)" if len(seen) < len(values) else ""
            print(f"  {label}: median {statistics.median(seen):.2f} s, max {max(seen):.2f} s "
                  f"[{text}]{missing}" if seen else f"  {label}: never seen")
        print("  notes shown:", [title for _, title in watch.notes])


async def long_prefill(exo: RealExo, cloud: FakeProvider, prefill_s: float) -> None:
    await exo.ops({"op": "engine", "model": "*", "prefill_steps": max(1, round(prefill_s)),
                   "prefill_delay": prefill_s, "stall": 0.0})
    async with Router(parse_config(config_for(exo.url, cloud.base_url), "bench")) as router:
        progress: list[tuple[float, int]] = []
        started = time.monotonic()
        router.subscribe(lambda e: progress.append((time.monotonic() - started, e.percent))
                         if isinstance(e, PromptProgress) else None)
        result = await router.chat({"model": "llama-1b", "messages": [
            {"role": "user", "content": "a long document " * 2000}]})
        took = time.monotonic() - started
        attempt = result.attempts[-1]
        first = (attempt.ttft_ms or 0) / 1000
        print(f"a {prefill_s:g} s prefill (first_token_timeout_s = "
              f"{router.config.provider('exo').first_token_timeout_s:g}, prefill_timeout_s = "
              f"{router.config.provider('exo').prefill_timeout_s:g}):")
        print(f"  answered by {result.provider_used} ({result.cost_source}), first token after "
              f"{first:.1f} s, whole answer {took:.1f} s, {len(progress)} progress reports "
              f"(last {progress[-1][1] if progress else 0}% at {progress[-1][0] if progress else 0:.1f} s); "
              f"cloud requests: {len(cloud.chat_requests)}; text: {result.text!r}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outages", type=int, default=3)
    parser.add_argument("--probe-s", type=float, default=5.0)
    parser.add_argument("--prefill-s", type=float, default=40.0)
    parser.add_argument("--gap-s", type=float, default=WINDOW_S + 1,
                        help="between one outage's end and the next")
    args = parser.parse_args()
    harness = harness_dir()
    if harness is None:
        raise SystemExit("shared/real_exo not found: set EXO_BRIDGE_REAL_EXO")
    os.environ["BENCH_OPENROUTER_KEY"] = KEY
    python = build_venv(harness)
    cloud = FakeProvider("openrouter", valid_keys={KEY})
    with tempfile.TemporaryDirectory() as work:
        exo = RealExo(python, harness, Path(work) / "exo").start(one_node())
        try:
            if args.outages:
                await outages(exo, cloud, args.outages, args.probe_s, args.gap_s)
            if args.prefill_s:
                await long_prefill(exo, cloud, args.prefill_s)
        finally:
            exo.stop()
            cloud.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
