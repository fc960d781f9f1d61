"""``exo-bridge ask --stream``: the answer on stdout as it arrives; on stderr, how far the provider
has read a long prompt ("exo: reading the prompt 63%") and, when the stream breaks after part of
the answer, what arrived, that it broke, and which provider broke it."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

from router.events import Event, PromptProgress, progress_text

if TYPE_CHECKING:
    from router.core import Router
    from router.errors import StreamBroken
    from router.journey import ChatStream
    from router.result import Result


class StreamPrinter:
    """One streamed answer as ``ask --stream`` shows it."""

    def __init__(self, router: Router, *, echo: bool, out: TextIO | None = None,
                 err: TextIO | None = None):
        self._router = router
        self._echo = echo
        self._out = out or sys.stdout
        self._err = err or sys.stderr
        self._names = {p.id: p.name for p in router.config.providers}
        self._stream: ChatStream | None = None
        self._shown_percent: int | None = None
        self._progress_line = False  # a progress line is on the terminal, not ended yet
        self.received = 0  # characters of the answer printed
        self.provider: str | None = None  # who sent them

    async def answer(self, request: dict[str, Any]) -> Result:
        unsubscribe = self._router.subscribe(self._on_event)
        try:
            async with self._router.stream(request) as stream:
                self._stream = stream
                try:
                    async for chunk in stream:
                        self.provider = stream.provider
                        self._print_chunk(chunk)
                finally:
                    self._end_progress()
                    if self._echo:
                        self._out.write("\n")
                        self._out.flush()
        finally:
            unsubscribe()
        assert stream.result is not None
        return stream.result

    def _print_chunk(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or ():
            text = (choice.get("delta") or {}).get("content")
            if text:
                self._end_progress()
                self.received += len(text)
                if self._echo:
                    self._out.write(text)
                    self._out.flush()

    def _on_event(self, event: Event) -> None:
        if not isinstance(event, PromptProgress) or self.received:
            return
        if self._stream is None or event.request_id != self._stream.request_id:
            return
        line = progress_text(self._names.get(event.provider, event.provider), event.percent)
        shown = self._shown_percent
        if self._err.isatty():  # one line, rewritten
            if event.percent == shown:
                return
            self._err.write(f"\r\x1b[K{line}")
            self._progress_line = True
        else:  # a log: a line per tenth of the prompt, and its end
            if shown is not None and event.percent < min(100, shown + 10):
                return
            self._err.write(f"{line}\n")
        self._shown_percent = event.percent
        self._err.flush()

    def _end_progress(self) -> None:
        if self._progress_line:
            self._err.write("\r\x1b[K")
            self._err.flush()
            self._progress_line = False

    def broken(self, exc: StreamBroken) -> str:
        """What to say when the stream broke after part of the answer was printed."""
        last = exc.attempts[-1] if exc.attempts else None
        provider = last.provider if last is not None else (self.provider or "the provider")
        name = self._names.get(provider, provider)
        reason = last.detail if last is not None and last.detail else str(exc)
        return (f"exo-bridge: the answer above is incomplete: {name}'s stream broke after "
                f"{self.received} characters ({reason}). Nothing was sent elsewhere, since part "
                "of the answer had been shown; ask again for a whole answer.")


