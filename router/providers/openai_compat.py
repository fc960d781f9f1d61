"""The shared OpenAI-shaped adapter; exo, OpenRouter and Hugging Face build on it."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar

from router.errors import Outcome, ProviderFailure
from router.money.prices import PriceTable
from router.numbers import number
from router.providers import chunk_shape
from router.providers.base import (
    ClusterApi,
    CostSource,
    HealthState,
    Kind,
    PromptRead,
    Role,
    Snapshot,
)
from router.redact import redact

if TYPE_CHECKING:
    import httpx

    from router.http.client import Fetched
    from router.keys import Secret
    from router.provider_settings import ProviderSettings
    from router.providers.account import AccountReport

# Keys of our own that never go upstream.
MAX_RETRY_AFTER_S = 7 * 86400.0  # a longer Retry-After is no hint we can use
_PRIVATE_KEYS = {"model", "stream", "stream_options"}
_MODEL_HINTS = ("model_not_supported", "not a valid model", "model not found", "no instance found",
                "does not exist", "unknown model", "model_not_found", "is not supported")


def error_message(body: bytes) -> str:
    """The error text of any provider's error body (object, string or ``errors[]``), without
    any key or token it quotes."""
    try:
        text = _error_text(body)
    except RecursionError:  # nested too deep to show
        text = body[:4096].decode("utf-8", "replace").strip()
    return redact(text[:4096])[:300]


def _error_text(body: bytes) -> str:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return body[:4096].decode("utf-8", "replace").strip()
    if isinstance(data, dict):
        err = data.get("error", data.get("detail"))
        if isinstance(err, dict):
            return str(err.get("message") or err)
        if isinstance(err, str):
            return err
        if isinstance(err, list) and err:
            return str(err[0].get("msg", err[0]) if isinstance(err[0], dict) else err[0])
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message", errors[0]))
        if isinstance(data.get("message"), str):
            return str(data["message"])
    return str(data)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    seconds = number(value, -MAX_RETRY_AFTER_S, MAX_RETRY_AFTER_S, text=True)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def seconds_to_utc_midnight(now: datetime | None = None) -> float:
    now = now or datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds()


def elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


class OpenAICompatible:
    """Any server that speaks the OpenAI chat API (``kind = "openai"``): a local server (LM
    Studio, llama.cpp, vLLM) or a paid API; ``paid`` and the config's prices say which."""

    kind: ClassVar[Kind] = Kind(
        "openai", Role.CLOUD, takes_key=True, needs_key=False, bills=False, default_base_url=None,
        deadlines=(5.0, 30.0, 60.0), several_nodes=False, cost=CostSource.PRICE_TABLE)
    done_marker_required = True
    cluster_api: ClassVar[ClusterApi | None] = None
    progress_comment: ClassVar[bytes | None] = None

    def prompt_read(self, report: bytes) -> PromptRead | None:
        return None

    def parse_prices(self, listing: Any, now: float) -> PriceTable:
        """No price list: prices come from the config."""
        return PriceTable({}, now)

    def chat_url(self, base_url: str) -> str:
        return f"{base_url}/chat/completions"

    def headers(self, key: Secret | None) -> dict[str, str]:
        headers = {"accept": "text/event-stream"}
        if key is not None:
            headers["authorization"] = f"Bearer {key.reveal()}"
        return headers

    def body(self, request: Mapping[str, Any], model_id: str) -> dict[str, Any]:
        """Always stream from the provider and ask for usage, whatever the caller wants."""
        body = {k: v for k, v in request.items() if k not in _PRIVATE_KEYS}
        body["model"] = model_id
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        return body

    def normalise(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        if data.get("error"):
            raise ProviderFailure(Outcome.SERVER_ERROR,
                                  "provider error mid-stream: " + _mid_stream_message(data))
        choices = data.get("choices")
        if not isinstance(choices, list):
            raise ProviderFailure(Outcome.BAD_RESPONSE, "stream chunk without choices")
        if chunk_shape.is_standard(data, choices):
            return [data]  # the common case: already a well-formed standard chunk, no copy
        for choice in choices:
            if isinstance(choice, dict) and choice.get("finish_reason") == "error":
                raise ProviderFailure(Outcome.SERVER_ERROR, "provider ended the stream with an error")
        chunks = self._standard(data, choices)
        for chunk in chunks:
            chunk_shape.check(chunk)
        return chunks

    @staticmethod
    def _standard(data: dict[str, Any], choices: list[Any]) -> list[dict[str, Any]]:
        chunk_id = str(data.get("id") or "")
        base = {
            "id": chunk_id if chunk_id.startswith("chatcmpl-") else f"chatcmpl-{chunk_id}",
            "object": "chat.completion.chunk",
            "created": data.get("created") or int(time.time()),
            "model": data.get("model", ""),
        }
        if data.get("system_fingerprint"):
            base["system_fingerprint"] = data["system_fingerprint"]
        chunks: list[dict[str, Any]] = []
        if choices:
            if not all(isinstance(c, dict) for c in choices):
                raise ProviderFailure(Outcome.BAD_RESPONSE, "a malformed chunk: a choice is not an object")
            chunks.append({**base, "choices": [chunk_shape.as_delta(c) for c in choices],
                           "usage": None})
        usage = data.get("usage")
        if isinstance(usage, dict):  # its numbers are judged later (router.money.usage_guard)
            chunks.append({**base, "choices": [], "usage": usage})
        return chunks

    def classify(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderFailure:
        message = error_message(body) or f"HTTP {status}"
        retry = retry_after_seconds(headers)
        # Hints may sit in the message or in an error code beside it (model_not_supported).
        outcome = self.outcome_for(status, f"{message} {body[:1000].decode('utf-8', 'replace')}")
        # How long to rest without a Retry-After is the policy's to decide (router/policy.py).
        return ProviderFailure(outcome, f"HTTP {status}: {message}"[:300], retry_after_s=retry,
                               status=status)

    def outcome_for(self, status: int, message: str) -> Outcome:
        lowered = message.lower()
        if status in (400, 404, 422) and any(h in lowered for h in _MODEL_HINTS):
            return Outcome.MODEL_UNAVAILABLE
        table = {401: Outcome.INVALID_KEY, 403: Outcome.INVALID_KEY, 402: Outcome.OUT_OF_CREDITS,
                 404: Outcome.MODEL_UNAVAILABLE, 408: Outcome.TIMEOUT, 429: Outcome.RATE_LIMITED,
                 400: Outcome.BAD_REQUEST, 413: Outcome.BAD_REQUEST, 422: Outcome.BAD_REQUEST}
        if status in table:
            return table[status]
        return Outcome.SERVER_ERROR if status >= 500 else Outcome.BAD_RESPONSE

    async def probe(self, http: httpx.AsyncClient, provider: ProviderSettings,
                    key: Secret | None) -> Snapshot:
        return await self.authenticated_get(http, provider, f"{provider.base_url}/models", key)

    async def authenticated_get(self, http: httpx.AsyncClient, provider: ProviderSettings,
                                url: str, key: Secret | None) -> Snapshot:
        from router.http.client import HTTP_ERRORS, fetch, http_error_detail  # loaded by now

        start = time.perf_counter()
        headers = {"authorization": f"Bearer {key.reveal()}"} if key is not None else {}
        try:
            response = await fetch(http, url, provider, seconds=10.0, headers=headers)
        except HTTP_ERRORS as exc:
            return Snapshot(HealthState.DOWN, http_error_detail(exc), elapsed_ms(start))
        except ValueError as exc:  # over a limit, or a corrupt encoding (router.http.body)
            return Snapshot(HealthState.DOWN, str(exc), elapsed_ms(start))
        latency = elapsed_ms(start)
        if response.status_code in (401, 403):
            return Snapshot(HealthState.DOWN, "invalid key", latency, invalid_key=True)
        if response.status_code >= 400:
            failure = self.classify(response.status_code, response.content, response.headers)
            return Snapshot(HealthState.DEGRADED, failure.detail, latency)
        return Snapshot(HealthState.HEALTHY, self.describe_ok(response), latency,
                        account=self.read_account(response))

    def describe_ok(self, response: Fetched) -> str:
        return "key OK"

    def read_account(self, response: Fetched) -> AccountReport | None:
        """What the key call's answer says of the account (a kind whose key call tells)."""
        return None


def _mid_stream_message(data: dict[str, Any]) -> str:
    err = data.get("error")
    try:
        text = str(err.get("message", err)) if isinstance(err, dict) else str(err)
    except RecursionError:
        text = "(an error nested too deep to show)"
    return redact(text[:4096])[:200]
