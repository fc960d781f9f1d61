"""One attempt at one provider: send, enforce deadlines, parse SSE, normalise chunks.

This is the single seam between the router and the wire. It raises ProviderFailure with
the outcome; it never retries and never decides what to do next.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from router import jsonio
from router.config import ProviderConfig
from router.errors import Outcome, ProviderFailure
from router.http.body import BodyError, BodyLimits, inflater_for, read_all
from router.http.wire import Wire, WireResponse
from router.keys import Secret
from router.providers.base import Adapter, PromptRead

_ERROR_BODY_LIMIT = 64 * 1024
_BODY_ERRORS: tuple[type[BaseException], ...] = (BodyError,)
_DEFAULT_LIMITS = BodyLimits()
_CONTENT_KEYS = ("content", "reasoning", "reasoning_content", "tool_calls", "refusal")


@dataclass(frozen=True, slots=True)
class Deadlines:
    connect_s: float
    first_token_s: float  # from ``since`` until the first content token (headers included)
    idle_s: float  # between data chunks once content flows (comments do not count)
    total_s: float = 600.0  # from ``since`` until the answer's end
    since: float | None = None  # loop time the attempt began (its wait for a connection); None: sent
    # From ``since``: the longest the first token may wait while the provider reports that it is
    # still reading the prompt (each report that moves on gives it ``first_token_s`` more).
    prefill_s: float = 0.0

    @classmethod
    def of(cls, provider: ProviderConfig, since: float | None = None) -> Deadlines:
        return cls(provider.connect_timeout_s, provider.first_token_timeout_s,
                   provider.idle_timeout_s, provider.total_timeout_s, since,
                   provider.prefill_timeout_s)


def has_content(chunk: Mapping[str, Any]) -> bool:
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if any(delta.get(k) for k in _CONTENT_KEYS):
            return True
    return False


def finish_reason(chunk: Mapping[str, Any]) -> str | None:
    for choice in chunk.get("choices") or ():
        if choice.get("finish_reason"):
            return str(choice["finish_reason"])
    return None


class Attempt:
    """An async iterator of standard chunks from one provider, with its own deadlines and limits.

    ``content_started`` tells the caller whether a failure came after the first token.
    """

    def __init__(self, wire: Wire, adapter: Adapter, url: str, body: dict[str, Any],
                 key: Secret | None, deadlines: Deadlines, limits: BodyLimits | None = None):
        self._wire = wire
        self._adapter = adapter
        self._url = url
        self._body = body
        self._key = key
        self._deadlines = deadlines
        self._limits = limits or _DEFAULT_LIMITS
        self.content_started = False
        self._finished = False
        self.first_token_at: float | None = None
        self.response_headers: Mapping[str, str] = {}
        self._loop = asyncio.get_running_loop()
        self._ends_at = 0.0  # the total deadline (loop time)
        self._received = 0  # body bytes as received
        self._most = self._limits.response_bytes
        self._idle_s = deadlines.idle_s
        self._now = self._loop.time
        self._read_at = 0.0  # when the last network read came in (once content flows)
        self._data_at = 0.0  # when the last data event came in (once content flows)
        self._since = 0.0
        self._first_by = 0.0  # the first-token deadline (loop time); prompt progress moves it
        self._progress_comment = adapter.progress_comment
        self.on_progress: Callable[[PromptRead], None] | None = None  # told each report that moves on
        self.prompt: PromptRead | None = None  # how far the prompt was read, as last reported

    async def batches(self) -> AsyncGenerator[list[dict[str, Any]], None]:
        """Standard chunks, a batch per network read: the chunks that arrived together are
        passed on together (one write downstream), each batch as soon as it is read."""
        since = self._deadlines.since
        self._since = since = self._loop.time() if since is None else since
        self._ends_at = since + self._deadlines.total_s
        deadline = self._first_by = min(since + self._deadlines.first_token_s, self._ends_at)
        response = await self._open(deadline)
        self.response_headers = response.headers
        try:
            if response.status != 200:
                raise self._adapter.classify(response.status,
                                             await self._read_error(response, deadline),
                                             response.headers)
            inflate = self._inflater(response.headers)
            if "text/event-stream" not in response.headers.get("content-type", ""):
                yield await self._whole_body(response, deadline)
                return
            # SSE: whole network parts are read (one deadline per read, not per line)
            parts = response.parts()
            lines = _Lines(self._limits)
            while (part := await self._next_part(parts, self._first_by)) is not None:
                for piece in (part,) if inflate is None else inflate(part):
                    chunks, done, failure = self._events(lines.feed(piece))
                    if chunks or lines.data_pending:  # data, not only comments, came in
                        self._data_at = self._read_at
                    if chunks:
                        yield chunks
                    if failure is not None:
                        raise failure  # after the chunks that came before it in the same read
                    if done:
                        await self._drain(parts, self._first_by)
                        return
            self._check_complete()
        except BodyError as exc:
            raise ProviderFailure(Outcome.BAD_RESPONSE, str(exc)) from None
        finally:
            await response.close()

    def _check_complete(self) -> None:
        """At the body's end without [DONE]: only legacy exo may end on a finish_reason."""
        if not (self._finished and not self._adapter.done_marker_required):
            raise ProviderFailure(Outcome.STREAM_CUT, "the stream ended without [DONE]"
                                  if self._finished else "the stream ended before it finished")

    async def _drain(self, parts: AsyncIterator[bytes], deadline: float) -> None:
        """Read to the body's end after [DONE], so the connection can be reused (within the
        same limits; a provider that goes on is simply cut off)."""
        try:
            while await self._next_part(parts, deadline) is not None:
                pass
        except ProviderFailure:
            pass

    def _inflater(self, headers: Mapping[str, str]) -> Callable[[bytes], Iterable[bytes]] | None:
        """A network part -> its decompressed pieces; None when the body is not compressed."""
        try:
            inflater = inflater_for(headers, self._limits)
        except BodyError as exc:
            raise ProviderFailure(Outcome.BAD_RESPONSE, str(exc)) from None
        return inflater.feed if inflater is not None else None

    def _events(self, lines: list[bytes]) -> tuple[list[dict[str, Any]], bool,
                                                   ProviderFailure | None]:
        """(standard chunks, whether [DONE] came, the failure that followed them) from complete
        SSE lines; comments, blank lines and other fields are skipped. Runs for every read of
        every answer: the common case is a few calls per chunk."""
        chunks: list[dict[str, Any]] = []
        normalise = self._adapter.normalise
        try:
            for line in lines:
                if not line.startswith(b"data:"):
                    if line.startswith(b":") and self._progress_comment is not None \
                            and not self.content_started \
                            and line.startswith(self._progress_comment):
                        self._prompt_progress(line[len(self._progress_comment):])
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    return chunks, True, None
                data = _json_object(payload)
                for chunk in normalise(data):
                    if not self.content_started:
                        self._mark(chunk)
                    if not self._finished:
                        self._finished = finish_reason(chunk) is not None
                    chunks.append(chunk)
        except ProviderFailure as failure:
            return chunks, False, failure
        return chunks, False, None

    def _prompt_progress(self, report: bytes) -> None:
        """The provider read more of the prompt: the first token may wait ``first_token_s``
        from now, within ``prefill_s`` of the start (a report that stands still moves nothing)."""
        read = self._adapter.prompt_read(report)
        if read is None or (self.prompt is not None and read.done <= self.prompt.done):
            return
        self.prompt = read
        bound = min(self._since + max(self._deadlines.prefill_s, self._deadlines.first_token_s),
                    self._ends_at)
        self._first_by = max(self._first_by,
                             min(self._loop.time() + self._deadlines.first_token_s, bound))
        if self.on_progress is not None:
            self.on_progress(read)

    async def _open(self, deadline: float) -> WireResponse:
        body = jsonio.dumps(self._body)
        try:
            async with asyncio.timeout_at(deadline):
                return await self._wire.post(self._url, body, self._adapter.headers(self._key),
                                             connect_s=self._deadlines.connect_s,
                                             read_s=self._deadlines.idle_s,
                                             total_s=max(0.001, self._ends_at - self._loop.time()))
        except TimeoutError:
            raise ProviderFailure(Outcome.TIMEOUT, "no response within the first-token deadline "
                                  f"({self._deadlines.first_token_s:g}s)") from None
        except self._wire.failures as exc:
            raise ProviderFailure(*self._wire.classify(exc)) from None

    async def _read_error(self, response: WireResponse, deadline: float) -> bytes:
        try:
            async with asyncio.timeout_at(max(deadline, self._loop.time() + 2)):
                return await read_all(response.parts(), response.headers, self._limits,
                                      most=_ERROR_BODY_LIMIT)
        except (*self._wire.failures, *self._wire.timeouts, *_BODY_ERRORS):
            return b""

    async def _whole_body(self, response: WireResponse, deadline: float) -> list[dict[str, Any]]:
        """A provider that ignored ``stream: true`` and sent one JSON completion."""
        try:
            async with asyncio.timeout_at(deadline):
                raw = await read_all(response.parts(), response.headers, self._limits)
        except self._wire.timeouts:
            raise ProviderFailure(Outcome.TIMEOUT, "no complete answer within the deadline "
                                  f"({self._deadlines.first_token_s:g}s)") from None
        except self._wire.failures:
            raise ProviderFailure(Outcome.BAD_RESPONSE, "the answer's body was cut short") from None
        try:
            data = jsonio.loads(raw)
        except (ValueError, RecursionError):
            raise ProviderFailure(Outcome.BAD_RESPONSE, "HTTP 200 with a body that is not JSON") \
                from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            if isinstance(data, dict) and data.get("error"):
                return self._adapter.normalise(data)  # raises the error
            raise ProviderFailure(Outcome.BAD_RESPONSE, "HTTP 200 but not a chat completion")
        whole = self._adapter.normalise(data)
        for chunk in whole:
            self._mark(chunk)
        return whole

    def _mark(self, chunk: Mapping[str, Any]) -> None:
        if not self.content_started and has_content(chunk):
            self.content_started = True
            self.first_token_at = time.perf_counter()
            self._read_at = self._data_at = self._loop.time()

    async def _next_part(self, parts: AsyncIterator[bytes], deadline: float) -> bytes | None:
        """The next bytes of the body, or None at its end.

        Before the first content token our own deadline bounds each wait (never across a yield
        to the caller; keep-alive bytes do not move it). Once content flows, the wire's read
        timeout (``idle_s``) bounds the gap between network reads and its total timeout the
        whole answer, at no extra cost; each read then checks that data, not only comments,
        came within ``idle_s`` and that the total deadline has not passed.
        """
        try:
            if self.content_started:
                part = await anext(parts)
            else:
                async with asyncio.timeout_at(deadline):
                    part = await anext(parts)
        except StopAsyncIteration:
            return None
        except self._wire.timeouts:
            raise self._timed_out() from None
        except self._wire.failures as exc:
            raise ProviderFailure(Outcome.STREAM_CUT,
                                  f"the connection broke mid-stream ({self._wire.classify(exc)[1]})") \
                from None
        self._received += len(part)
        if self._received > self._most:
            raise ProviderFailure(Outcome.BAD_RESPONSE, str(self._limits.too_large(self._received)))
        if self.content_started:
            self._read_at = now = self._now()
            if now >= self._ends_at:
                raise self._timed_out()
            if now - self._data_at > self._idle_s:
                raise ProviderFailure(Outcome.STREAM_CUT, f"no data for {self._idle_s:g}s, only "
                                      "keep-alive comments (idle_timeout_s)")
        return part

    def _timed_out(self) -> ProviderFailure:
        if self._loop.time() >= self._ends_at - 0.01:
            return ProviderFailure(Outcome.STREAM_CUT if self.content_started else Outcome.TIMEOUT,
                                   f"the answer took longer than {self._deadlines.total_s:g}s "
                                   "(total_timeout_s)")
        if self.content_started:
            return ProviderFailure(Outcome.STREAM_CUT, "the stream stalled for "
                                   f"{self._deadlines.idle_s:g}s (idle_timeout_s)")
        read = self.prompt
        if read is not None:
            limit = max(self._deadlines.prefill_s, self._deadlines.first_token_s)
            if read.done < read.total and self._loop.time() >= self._since + limit - 0.01:
                return ProviderFailure(Outcome.TIMEOUT, f"still reading the prompt ({read.percent}%) "
                                       f"after {limit:g}s (prefill_timeout_s)")
            if read.done < read.total:
                return ProviderFailure(Outcome.TIMEOUT, f"reading the prompt stopped at "
                                       f"{read.percent}%: no progress and no first token for "
                                       f"{self._deadlines.first_token_s:g}s")
            return ProviderFailure(Outcome.TIMEOUT, "the prompt was read, then no first token for "
                                   f"{self._deadlines.first_token_s:g}s")
        return ProviderFailure(Outcome.TIMEOUT, "no first token within "
                               f"{self._deadlines.first_token_s:g}s")


class _Lines:
    """Complete SSE lines out of network parts; a line longer than ``max_line_bytes`` is a
    BodyError. A line that spans many parts is kept as its parts and joined once, at its end
    (so a huge line sent a few bytes at a time costs no more than a short one)."""

    __slots__ = ("_held", "_held_bytes", "_limits")

    def __init__(self, limits: BodyLimits):
        self._limits = limits
        self._held: list[bytes] = []
        self._held_bytes = 0

    def feed(self, part: bytes) -> list[bytes]:
        if self._held:
            return self._join(part)
        *lines, pending = part.split(b"\n")  # the usual read: whole lines
        if pending:
            self._hold(pending)
        return lines

    def _join(self, part: bytes) -> list[bytes]:
        if b"\n" not in part:
            self._hold(part)
            return []
        *lines, pending = b"".join((*self._held, part)).split(b"\n")
        self._held.clear()
        self._held_bytes = 0
        if pending:
            self._hold(pending)
        return lines

    def _hold(self, part: bytes) -> None:
        self._held.append(part)
        self._held_bytes += len(part)
        if self._held_bytes > self._limits.line_bytes:
            raise self._limits.line_too_long(self._held_bytes)

    @property
    def data_pending(self) -> bool:
        """A data line has begun and not ended yet (a long one, arriving over several reads)."""
        return bool(self._held) and self._held[0].startswith(b"data:")


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        data = jsonio.loads(payload)
    except (ValueError, RecursionError):
        raise ProviderFailure(Outcome.BAD_RESPONSE, "a stream chunk is not JSON") from None
    if not isinstance(data, dict):
        raise ProviderFailure(Outcome.BAD_RESPONSE, "a stream chunk is not an object")
    return data
