"""A provider's answer read within its limits: bytes received, bytes once decompressed, the
longest SSE line (per provider: ``max_response_bytes``, ``max_decompressed_bytes``,
``max_line_bytes``).

The wire hands over the body as it was sent; decompression is ours, through a zlib decompressobj
bounded by ``max_length``, a piece at a time, so no single read can inflate past a limit and
each piece is checked before the next is made. Counting costs one addition per network read.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass

from router.provider_settings import (
    MAX_DECOMPRESSED_BYTES,
    MAX_LINE_BYTES,
    MAX_RESPONSE_BYTES,
    ProviderSettings,
)

ACCEPT_ENCODING = "gzip, deflate"  # what we can decompress (sent with every request)
PIECE = 256 * 1024  # the most one decompression step produces


class BodyError(ValueError):
    """The answer's body is over a limit or cannot be decoded; ``str()`` says which."""


@dataclass(frozen=True, slots=True)
class BodyLimits:
    response_bytes: int = MAX_RESPONSE_BYTES
    decompressed_bytes: int = MAX_DECOMPRESSED_BYTES
    line_bytes: int = MAX_LINE_BYTES

    @classmethod
    def of(cls, provider: ProviderSettings) -> BodyLimits:
        return cls(provider.max_response_bytes, provider.max_decompressed_bytes,
                   provider.max_line_bytes)

    def too_large(self, received: int) -> BodyError:
        return BodyError(f"the answer is larger than max_response_bytes ({self.response_bytes}; "
                         f"{received} bytes received)")

    def line_too_long(self, length: int) -> BodyError:
        return BodyError(f"an SSE line is longer than max_line_bytes ({self.line_bytes}; "
                         f"{length} bytes so far)")


class Inflater:
    """gzip or deflate, a bounded piece at a time; over ``limit`` bytes in all is a BodyError."""

    def __init__(self, encoding: str, limit: int):
        self._encoding = encoding
        self._raw_deflate = False
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
        self._limit = limit
        self._left = limit
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            piece = self._inflate(data, min(PIECE, self._left + 1))
            if len(piece) > self._left:
                raise BodyError(f"the answer decompresses to more than max_decompressed_bytes "
                                f"({self._limit})")
            self._left -= len(piece)
            if piece:
                yield piece
            data = self._z.unconsumed_tail

    def _inflate(self, data: bytes, most: int) -> bytes:
        try:
            piece = self._z.decompress(data, most)
        except zlib.error:
            if self._encoding != "deflate" or self._started or self._raw_deflate:
                raise BodyError(f"the answer's {self._encoding} data is corrupt") from None
            self._raw_deflate = True  # some servers send deflate without its zlib header
            self._z = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._inflate(data, most)
        self._started = True
        return piece


def inflater_for(headers: Mapping[str, str], limits: BodyLimits) -> Inflater | None:
    """The decompressor the answer needs, None when it is not compressed."""
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return Inflater("deflate" if encoding == "deflate" else "gzip", limits.decompressed_bytes)
    raise BodyError(f"the answer is in an encoding we did not ask for ({encoding[:40]})")


async def read_all(parts: AsyncIterator[bytes], headers: Mapping[str, str], limits: BodyLimits,
                   *, most: int | None = None) -> bytes:
    """The whole body, decompressed, within the limits (``most``: a lower cap on what is kept,
    e.g. for an error text; the rest is not read)."""
    inflater = inflater_for(headers, limits)
    keep = limits.decompressed_bytes if most is None else most
    body = bytearray()
    received = 0
    async for raw in parts:
        received += len(raw)
        if received > limits.response_bytes:
            raise limits.too_large(received)
        for piece in inflater.feed(raw) if inflater is not None else (raw,):
            body += piece
            if len(body) > keep:
                if most is not None:
                    return bytes(body[:most])
                raise BodyError(f"the answer is larger than max_decompressed_bytes ({keep})")
    return bytes(body)
