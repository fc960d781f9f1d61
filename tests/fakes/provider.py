"""A fake provider on 127.0.0.1 that answers the way each real one does, quirks and faults included.

Each FakeProvider runs its own aiohttp server in a background thread, so synchronous tests,
async tests and subprocesses (the CLI) can all talk to it. Set ``fault`` to make it misbehave:

    refuse (stop()), hang_before_headers, stall_after_headers, stall_mid_stream,
    close_without_done, error_chunk_mid_stream, status (with ``fault_status``),
    malformed_json, bad_request, model_not_found, and the hostile ones of tests/fakes/hostile.py
    (bombs, endless streams, malformed chunks, echoed keys)

What it answers: ``reply`` as text, or ``tool_calls`` / a ``refusal`` instead, with logprobs when
the request asks and ``system_fingerprint`` when set (tests/fakes/answers.py).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import exo_routes, hostile
from tests.fakes.account import FakeAccount, account_check, bill_reported
from tests.fakes.answers import Answer
from tests.fakes.exo_cluster import FakeCluster

FLAVORS = ("exo", "exo-legacy", "openrouter", "huggingface", "openai")
_BASE_PATH = {"exo": "", "exo-legacy": "", "openrouter": "/api/v1", "huggingface": "/v1",
              "openai": "/v1"}


@dataclass
class Recorded:
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class FakeProvider:
    flavor: str = "openai"
    reply: str = "Hello from the fake provider ."
    fault: str | None = None
    fault_status: int = 500
    retry_after: str | None = None
    chunk_delay_s: float = 0.0
    stall_s: float = 30.0
    keep_alive_s: float = 0.05
    valid_keys: set[str] | None = None  # None: any key (or none) is fine
    reported_cost: float | None = None  # openrouter: override usage.cost
    inference_provider: str | None = "together"  # huggingface response header
    omit_usage: bool = False
    usage_override: dict[str, Any] = field(default_factory=dict)  # absurd numbers, NaN, ...
    tool_calls: list[tuple[str, str]] | None = None  # answer with these calls (name, JSON args)
    # An agent's turn: with tool_calls, call them while the request offers the tools and has no
    # tool result yet; once it has one, answer this text ("{result}": the last result's text).
    after_tool: str | None = None
    refusal: str | None = None  # answer with this refusal
    thinking: str | None = None  # reasoning streamed before the answer (exo: reasoning_content)
    system_fingerprint: str | None = None  # sent in every chunk (not by exo)
    hostile_bytes: int = 1 << 30  # the size of a bomb or of a huge body or line
    fault_after_tokens: int = 1  # content tokens an SSE fault sends before it strikes
    # exo state
    models: list[str] = field(default_factory=lambda: [
        "mlx-community/Llama-3.2-3B-Instruct-4bit", "mlx-community/Qwen3-8B-4bit"])
    ready: set[str] = field(default_factory=lambda: {"mlx-community/Llama-3.2-3B-Instruct-4bit"})
    downloading: dict[str, float] = field(default_factory=dict)  # model -> percent
    loading: dict[str, tuple[int, int]] = field(default_factory=dict)  # model -> layers done/total
    legacy_default: str = "llama-3.2-3b"
    cluster: FakeCluster | None = None  # exo: a simulated cluster instead of the fields above
    exo_parts: bool = True  # exo serves /state/<part> (v1.0.70 on); False: only the whole /state
    # a GET route's path -> what to serve there instead of its JSON (given it): hostile
    # numbers (``1e400``, a 400-digit integer), a list where an object belongs
    tamper: dict[str, Callable[[Any], bytes]] = field(default_factory=dict)
    hf_prices: dict[str, list[tuple[str, float, float]]] = field(default_factory=lambda: {
        "meta-llama/Llama-3.2-3B-Instruct": [("together", 0.2, 0.6), ("novita", 0.3, 0.9)]})
    or_prices: dict[str, tuple[str, str]] = field(default_factory=lambda: {
        "meta-llama/llama-3.2-3b-instruct": ("0.0000001", "0.0000002"),
        "openai/gpt-4o": ("0.0000025", "0.00001"), "openai/gpt-4o-mini": ("0.00000015", "0.0000006"),
        "anthropic/claude-sonnet-4": ("0.000003", "0.000015"),
        "meta-llama/llama-3.2-3b-instruct:free": ("0", "0")})

    record: bool = True  # keep every request (tests); a long soak keeps only the counts
    account: FakeAccount = field(default_factory=FakeAccount)  # the cloud key's (tests/fakes/account.py)

    def __post_init__(self) -> None:
        assert self.flavor in FLAVORS, self.flavor
        self.hits: dict[str, int] = {}  # path -> requests, also served at GET /_fake/stats
        self.requests: list[Recorded] = []
        self.chat_requests: list[Recorded] = []
        self.cancelled_streams = 0
        self.completed_streams = 0
        self.sent_bytes = 0  # written by the hostile answers (before compression)
        self.served_bytes: dict[str, int] = {}  # path -> body bytes of its answers (not chat)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._call(self._setup())
        if self.cluster is not None:
            self._clock = asyncio.run_coroutine_threadsafe(self.cluster.run(), self._loop)
        self.start()

    # -- control -------------------------------------------------------------------------
    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.origin + _BASE_PATH[self.flavor]

    def _call(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _setup(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()

    def start(self) -> None:
        """Listen (again, on the same port after stop())."""
        async def go() -> None:
            assert self._runner is not None
            self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
            await self._site.start()
            server = self._site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._call(go())

    def stop(self) -> None:
        """Go down like a dead process: open connections are cut, new ones refused until start()."""
        async def go() -> None:
            if self._site is not None:
                await self._site.stop()
                self._site = None
            assert self._runner is not None and self._runner.server is not None
            for handler in self._runner.server.connections:
                handler.force_close()
                if handler.transport is not None:
                    handler.transport.abort()
        self._call(go())

    def close(self) -> None:
        async def go() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
        try:
            self._call(go())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    # -- routing -------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        if request.path == "/_fake/stats":
            return web.json_response({"hits": self.hits, "served_bytes": self.served_bytes})
        record = Recorded(request.path, body, dict(request.headers))
        if self.record:
            self.requests.append(record)
        path = request.path.removeprefix(_BASE_PATH[self.flavor])
        if self.flavor.startswith("exo"):
            path = request.path
        if path.endswith("/chat/completions") and request.method == "POST":
            if self.record:
                self.chat_requests.append(record)
            return await self._chat(request, body)
        answer = exo_routes.answer(self, request, body) if self.flavor == "exo" else None
        if answer is None:
            handler = self._get_routes().get(path)
            if handler is None or request.method != "GET":
                return web.json_response({"detail": "Not Found"}, status=404)
            answer = await handler(request)
        tamper = self.tamper.get(path)
        if tamper is not None and isinstance(answer, web.Response) and isinstance(answer.body, bytes):
            answer = web.Response(status=answer.status, body=tamper(json.loads(answer.body)),
                                  content_type="application/json")
        if isinstance(answer, web.Response) and isinstance(answer.body, bytes):
            self.served_bytes[request.path] = self.served_bytes.get(request.path, 0) + len(answer.body)
        return answer

    def _get_routes(self) -> dict[str, Any]:
        routes = {
            "exo": {"/node_id": self._node_id, "/v1/models": self._exo_models, "/models": self._exo_models},
            "exo-legacy": {"/healthcheck": self._healthcheck, "/v1/models": self._legacy_models,
                           "/models": self._legacy_models,
                           "/v1/download/progress": self._legacy_progress},
            "openrouter": {"/key": self._or_key, "/models": self._or_models},
            "huggingface": {"/models": self._hf_models, "/api/whoami-v2": self._whoami},
            "openai": {"/models": self._openai_models},
        }
        return routes[self.flavor]

    def _authorised(self, request: web.Request) -> bool:
        if self.valid_keys is None:
            return True
        auth = request.headers.get("Authorization", "")
        return auth.removeprefix("Bearer ") in self.valid_keys

    # -- exo -----------------------------------------------------------------------------
    async def _node_id(self, request: web.Request) -> web.Response:
        return web.json_response("12D3KooWFakeNode")

    async def _exo_models(self, request: web.Request) -> web.Response:
        if self.cluster is not None:
            return web.json_response(self.cluster.catalogue())
        return web.json_response({"object": "list", "data": [
            {"id": m, "object": "model", "created": 0, "owned_by": "exo"} for m in self.models]})

    def exo_ready(self) -> set[str]:
        return self.cluster.ready_models() if self.cluster is not None else self.ready

    async def _healthcheck(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _legacy_models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": m, "object": "model", "owned_by": "exo", "ready": True} for m in self.models]})

    async def _legacy_progress(self, request: web.Request) -> web.Response:
        return web.json_response({f"node-{i}": {
            "repo_id": f"mlx-community/{m}", "status": "in_progress",
            "downloaded_bytes": int(p * 10), "total_bytes": 1000,
            "shard": {"model_id": m, "start_layer": 0}} for i, (m, p) in enumerate(self.downloading.items())})

    # -- cloud ---------------------------------------------------------------------------
    async def _or_key(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return self._error_response(401, "No auth credentials found")
        return web.json_response(self.account.key_data())

    async def _or_models(self, request: web.Request) -> web.Response:
        return web.json_response({"data": [
            {"id": m, "context_length": 131072, "pricing": {"prompt": p, "completion": c}}
            for m, (p, c) in self.or_prices.items()]})

    async def _hf_models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": m, "object": "model", "providers": [
                {"provider": name, "status": "live", "context_length": 131072,
                 "pricing": {"input": i, "output": o}} for name, i, o in offers]}
            for m, offers in self.hf_prices.items()]})

    async def _whoami(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"error": "Invalid credentials in Authorization header"},
                                     status=401)
        return web.json_response({"type": "user", "name": "fake-user"})

    async def _openai_models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [
            {"id": m, "object": "model"} for m in self.models]})

    # -- errors --------------------------------------------------------------------------
    def _error_response(self, status: int, message: str, error_type: str | None = None,
                        headers: dict[str, str] | None = None) -> web.Response:
        if self.flavor == "huggingface":
            body: Any = {"error": message}
        elif self.flavor == "openrouter":
            body = {"error": {"code": status, "message": message,
                              "metadata": {"error_type": error_type or "provider_error"}}}
        elif self.flavor == "exo":
            body = {"error": {"message": message, "type": "Not Found" if status == 404 else "Error",
                              "param": None, "code": status}}
        elif self.flavor == "exo-legacy":
            body = {"detail": message}
        else:
            body = {"error": {"message": message, "type": "invalid_request_error", "param": None,
                              "code": None}}
        return web.json_response(body, status=status, headers=headers)

    def _fault_status_response(self) -> web.Response:
        status = self.fault_status
        messages = {401: "Invalid credentials", 402: "Insufficient credits", 403: "Forbidden",
                    404: "model not found", 429: "Rate limit exceeded",
                    500: "Internal server error", 502: "Bad gateway", 503: "Service unavailable"}
        headers = {"Retry-After": self.retry_after} if self.retry_after else None
        error_type = {402: "payment_required", 429: "rate_limit_exceeded"}.get(status)
        return self._error_response(status, messages.get(status, "error"), error_type, headers)

    # -- chat ----------------------------------------------------------------------------
    async def _chat(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not self._authorised(request):
            if self.flavor == "huggingface":
                return web.json_response({"error": "Invalid credentials in Authorization header"},
                                         status=401)
            return self._error_response(401, "Invalid API key", "unauthorized")
        early = await self._early_fault(request, body)
        if early is not None:
            return early
        refused, estimate = account_check(self, body)  # the account's limits (cloud flavours)
        if refused is not None:
            return refused
        self.account.in_flight_usd += estimate
        try:
            return await self._answer(request, body)
        finally:
            self.account.in_flight_usd -= estimate

    async def _answer(self, request: web.Request, body: Any) -> web.StreamResponse:
        model = body.get("model", "")
        if self.flavor == "exo" and model not in self.exo_ready():
            return self._error_response(404, f"No instance found for model {model}")
        if self.flavor == "exo-legacy" and model not in self.models:
            model = self.legacy_default  # the quirk: silently swapped
        if self.fault in hostile.FAULTS:
            return await hostile.answer(self, request, body)
        answer = self._agent_turn(body) if self.after_tool is not None else \
            Answer(self.reply, self.tool_calls, self.refusal, self.thinking)
        prompt_tokens = 5 + sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        if body.get("stream"):
            return await self._stream(request, body, model, answer, prompt_tokens)
        return await self._whole(request, body, model, answer, prompt_tokens)

    def _agent_turn(self, body: dict[str, Any]) -> Answer:
        """One turn of an agent's loop (``after_tool``): a tool call, then the answer that reads
        its result."""
        assert self.after_tool is not None
        results = [m for m in body["messages"] if m.get("role") == "tool"]
        if results:
            content = results[-1].get("content")
            text = content if isinstance(content, str) else " ".join(
                str(p.get("text", "")) for p in content or () if isinstance(p, dict))
            return Answer(self.after_tool.replace("{result}", text.strip()))
        offered = {(t.get("function") or {}).get("name") for t in body.get("tools") or ()}
        calls = [c for c in self.tool_calls or () if c[0] in offered]
        return Answer(self.reply, calls or None)

    async def _early_fault(self, request: web.Request, body: Any) -> web.StreamResponse | None:
        fault = self.fault
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self._error_response(422 if self.flavor == "exo" else 400, "messages required")
        if fault == "hang_before_headers":
            await asyncio.sleep(self.stall_s)
        if fault == "status":
            return self._fault_status_response()
        if fault == "bad_request":
            return self._error_response(400, "messages[0].content must be a string")
        if fault == "model_not_found":
            if self.flavor == "huggingface":
                return web.json_response({"error": {"message": "Model not supported by provider",
                                                    "code": "model_not_supported"}}, status=400)
            if self.flavor == "openrouter":
                return self._error_response(400, f"{body.get('model')} is not a valid model ID")
            return self._error_response(404, f"No instance found for model {body.get('model')}")
        if fault == "malformed_json":
            return web.Response(body=b'{"id": "x", "choices": [', content_type="application/json")
        return None

    def _usage(self, prompt_tokens: int, completion_tokens: int, model: str = "") -> dict[str, Any]:
        usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                 "total_tokens": prompt_tokens + completion_tokens}
        if self.flavor == "openrouter":
            usage["cost"] = (self.reported_cost if self.reported_cost is not None
                             else 0.0 if model.endswith(":free")
                             else prompt_tokens * 1e-7 + completion_tokens * 2e-7)
        usage.update(self.usage_override)
        if self.flavor == "openrouter":
            bill_reported(self.account, usage)  # what it billed is what the key call shows
        return usage

    def _chunk(self, cid: str, model: str, delta: dict[str, Any], finish: str | None,
               logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        if self.flavor == "exo":  # exo: the role in every delta, no null fields (exclude_none)
            choice["delta"] = {"role": "assistant", **delta}
            if finish is None:
                del choice["finish_reason"]
        if logprobs is not None:
            choice["logprobs"] = logprobs
        if self.flavor == "exo-legacy":
            choice["message"] = {"role": "assistant", **delta}
        obj = "chat.completion" if self.flavor == "exo" else "chat.completion.chunk"
        chunk = {"id": cid, "object": obj, "created": int(time.time()), "model": model,
                 "choices": [choice]}
        if self.system_fingerprint and not self.flavor.startswith("exo"):
            chunk["system_fingerprint"] = self.system_fingerprint
        return chunk

    async def _stream(self, request: web.Request, body: dict[str, Any], model: str,
                      answer: Answer, prompt_tokens: int) -> web.StreamResponse:
        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        if self.flavor == "huggingface" and self.inference_provider:
            headers["x-inference-provider"] = self.inference_provider
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        send = _Sender(response)
        cid = str(uuid.uuid4()) if self.flavor == "exo" else f"chatcmpl-{uuid.uuid4().hex}"
        if self.cluster is not None:  # exo: its command id, which POST /v1/cancel/{id} names
            send.cancelled = self.cluster.generations.setdefault(cid, asyncio.Event())
        try:
            await self._stream_body(send, body, model, answer, prompt_tokens, cid)
            self.completed_streams += 1
        except (ConnectionResetError, asyncio.CancelledError):
            self.cancelled_streams += 1
            raise
        except _Cancelled:  # exo closes the generation's channel: the stream just ends
            self.cancelled_streams += 1
        finally:
            if self.cluster is not None:
                self.cluster.generations.pop(cid, None)
        return response

    async def _stream_body(self, send: _Sender, body: dict[str, Any], model: str, answer: Answer,
                           prompt_tokens: int, cid: str) -> None:
        fault = self.fault
        if self.flavor == "openrouter":
            await send.comment("OPENROUTER PROCESSING")
        if self.flavor == "exo":  # as exo frames it (src/exo/api/keepalive.py, adapters/)
            await send.comment("keep-alive")
            await send.comment('prefill_progress {"PrefillProgressChunk": {"model": '
                               f'"{model}", "processed_tokens": {prompt_tokens}, '
                               f'"total_tokens": {prompt_tokens}}}}}')
        if fault == "stall_after_headers":
            await send.keep_alive_for(self.stall_s, self.keep_alive_s)
        if self.flavor != "exo":  # exo sends no role-only chunk first: its first token has it
            await send.data(self._chunk(cid, model, {"role": "assistant", "content": ""}, None))
        deltas = answer.deltas(self.flavor, bool(body.get("logprobs")))
        for i, (delta, logprobs) in enumerate(deltas):
            if i == 2 and fault in ("stall_mid_stream", "close_without_done", "error_chunk_mid_stream"):
                await self._mid_stream_fault(send, fault, cid, model)
                return
            if self.flavor == "exo" and i == len(deltas) - 1:  # exo: its last token ends it
                await self._exo_end(send, cid, model, delta, logprobs,
                                    self._usage(prompt_tokens, len(deltas), model), answer.finish)
                return
            await send.data(self._chunk(cid, model, delta, None, logprobs))
            if self.chunk_delay_s:
                await asyncio.sleep(self.chunk_delay_s)
        await self._stream_end(send, body, model, cid, self._usage(prompt_tokens, len(deltas), model),
                               answer.finish)

    async def _exo_end(self, send: _Sender, cid: str, model: str, delta: dict[str, Any],
                       logprobs: dict[str, Any] | None, usage: dict[str, Any], finish: str) -> None:
        """exo's last token carries the finish reason and the usage; its stats follow as a
        comment, then [DONE] (src/exo/api/adapters/chat_completions.py)."""
        final = self._chunk(cid, model, delta, finish, logprobs)
        if not self.omit_usage:
            final["usage"] = usage
        await send.data(final)
        await send.comment('generation_stats {"prompt_tps": 45.0, "generation_tps": 15.7, '
                           f'"prompt_tokens": {usage["prompt_tokens"]}, '
                           f'"generation_tokens": {usage["completion_tokens"]}}}')
        await send.raw(b"data: [DONE]\n\n")

    async def _mid_stream_fault(self, send: _Sender, fault: str, cid: str, model: str) -> None:
        if fault == "stall_mid_stream":
            await asyncio.sleep(self.stall_s)
        elif fault == "close_without_done":
            send.response.force_close()
        elif self.flavor == "openrouter":
            await send.data({"id": cid, "object": "chat.completion.chunk", "model": model,
                             "error": {"code": 502, "message": "Provider disconnected"},
                             "choices": [{"index": 0, "delta": {"content": ""},
                                          "finish_reason": "error"}]})
        else:
            await send.data({"error": {"message": "generation failed", "type": "InternalServerError",
                                       "code": 500}})
            await send.raw(b"data: [DONE]\n\n")

    async def _stream_end(self, send: _Sender, body: dict[str, Any], model: str, cid: str,
                          usage: dict[str, Any], finish: str) -> None:
        final = self._chunk(cid, model, {}, finish)
        if self.flavor == "exo":
            if not self.omit_usage:
                final["usage"] = usage
            await send.data(final)
            await send.comment('generation_stats {"tps": 42}')
        elif self.flavor == "exo-legacy":
            await send.data(final)
            return  # no usage, no [DONE]
        else:
            await send.data(final)
            wants = (body.get("stream_options") or {}).get("include_usage")
            if (self.flavor == "openrouter" or wants) and not self.omit_usage:
                await send.data({"id": cid, "object": "chat.completion.chunk", "model": model,
                                 "choices": [], "usage": usage})
        await send.raw(b"data: [DONE]\n\n")

    async def _whole(self, request: web.Request, body: dict[str, Any], model: str, answer: Answer,
                     prompt_tokens: int) -> web.StreamResponse:
        message, logprobs = answer.message(self.flavor, bool(body.get("logprobs")))
        pieces = answer.deltas(self.flavor, False)
        completion: dict[str, Any] = {
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": logprobs,
                         "finish_reason": answer.finish}]}
        if self.system_fingerprint:
            completion["system_fingerprint"] = self.system_fingerprint
        if not self.omit_usage:
            completion["usage"] = self._usage(prompt_tokens, len(pieces), model)
        if self.flavor != "exo":
            return web.json_response(completion)
        # exo: 200 and headers at once, the body only at the end
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await asyncio.sleep(self.chunk_delay_s * len(pieces))
        await response.write(json.dumps(completion).encode())
        return response


async def _body(request: web.Request) -> Any:
    if not request.can_read_body:
        return None
    raw = await request.read()
    try:
        return json.loads(raw)
    except ValueError:
        return raw


class _Cancelled(Exception):
    pass


class _Sender:
    def __init__(self, response: web.StreamResponse):
        self.response = response
        self.cancelled: asyncio.Event | None = None

    async def raw(self, data: bytes) -> None:
        if self.cancelled is not None and self.cancelled.is_set():
            raise _Cancelled
        await self.response.write(data)

    async def data(self, obj: Any) -> None:
        await self.raw(b"data: " + json.dumps(obj).encode() + b"\n\n")

    async def comment(self, text: str) -> None:
        await self.raw(f": {text}\n\n".encode())

    async def keep_alive_for(self, seconds: float, every: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await self.comment("keep-alive")
            await asyncio.sleep(every)
