"""One request's journey through the providers: its trace, each attempt's run, and the
ChatStream handle the caller iterates."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from router.config import ProviderConfig
from router.errors import Attempt
from router.money.budget import Reservation
from router.result import Assembler, Result
from router.streaming import Attempt as WireAttempt
from router.streaming import has_content


@dataclass(slots=True)
class Trace:
    """One request as it goes through the providers."""

    request_id: str
    logical_model: str
    streamed: bool
    prompt_chars: int
    started: float = field(default_factory=time.perf_counter)
    attempts: list[Attempt] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Admitted:
    model_id: str
    url: str
    reservation: Reservation
    since: float  # loop time the attempt began (its wait for a connection counts in its deadline)


@dataclass(slots=True)
class Run:
    """One attempt at one provider."""

    provider: ProviderConfig
    model_id: str
    wire: WireAttempt
    reservation: Reservation
    started: float = field(default_factory=time.perf_counter)
    assembler: Assembler = field(default_factory=Assembler)

    held: list[dict[str, Any]] = field(default_factory=list)
    content_chunks: int = 0  # each carries at least one completion token
    over: list[dict[str, Any]] = field(default_factory=list)  # past the hold, not passed on
    capped: bool = False  # cut where the reservation ended (finish_reason "length")

    def release(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What the caller may see now of a batch of chunks. Chunks before the first content
        token are held back, so a failure before it fails over without the caller seeing
        anything; the upstream usage chunk is kept for the router's own (with cost). Chunks
        past the reservation's completion tokens wait in ``over`` (the router either holds
        more, or ends the answer with ``cut()``)."""
        add = self.assembler.add
        limit = self.reservation.completion if self.reservation.capped else None
        kept = batch
        for index, chunk in enumerate(batch):
            if limit is not None and has_content(chunk):
                if self.content_chunks >= limit:
                    kept, self.over = batch[:index], batch[index:]
                    break
                self.content_chunks += 1
            add(chunk)
        return self._visible(kept)

    def cut(self) -> list[dict[str, Any]]:
        """End the answer where the hold ends: one last chunk with finish_reason "length"."""
        self.capped, self.over = True, []
        last = {"id": self.assembler.id, "object": "chat.completion.chunk",
                "created": self.assembler.created, "model": self.assembler.model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
        self.assembler.add(last)
        return self._visible([last])

    def _visible(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with_choices = [chunk for chunk in batch if chunk.get("choices")]
        if not self.wire.content_started:
            self.held.extend(with_choices)
            return []
        if self.held:
            ready, self.held = [*self.held, *with_choices], []
            return ready
        return with_choices

    def ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def ttft_ms(self) -> float | None:
        at = self.wire.first_token_at
        return None if at is None else (at - self.started) * 1000


class ChatStream:
    """``async for chunk in stream`` yields standard ``chat.completion.chunk`` dicts; the last
    one carries ``usage`` (with ``cost``). Afterwards ``stream.result`` holds the Result.
    ``stream.batches()`` yields the same chunks as they arrived together (for a relay that
    writes each batch at once).

    Use it as an async context manager so that leaving early cancels the upstream request.
    """

    def __init__(self, route: Callable[[ChatStream], AsyncGenerator[list[dict[str, Any]], None]]):
        """``route`` is the router's routing of one request, told where to report (``self``)."""
        self.result: Result | None = None
        self.provider: str | None = None  # set before the first chunk is yielded
        self.request_id: str | None = None  # set once routing begins (its events carry it)
        self.attempts: list[Attempt] = []
        self._batches = route(self)

    def batches(self) -> AsyncIterator[list[dict[str, Any]]]:
        return self._batches

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[dict[str, Any]]:
        async for batch in self._batches:
            for chunk in batch:
                yield chunk

    async def __aenter__(self) -> ChatStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._batches.aclose()




def usage_chunk(result: Result) -> dict[str, Any]:
    """The last chunk of every stream: no choices, the whole request's usage with its cost."""
    response = result.response
    return {"id": response["id"], "object": "chat.completion.chunk",
            "created": response["created"], "model": response["model"], "choices": [],
            "usage": result.usage}

