"""The Router: Exo-first failover over the providers of one Config.

One request, step by step, and the file that decides each:

1. It enters at ``Router.chat`` or ``Router.stream`` (here; the endpoint's routes in
   router/endpoint/ call these). Its fields are checked (router/request_check.py).
2. The providers to try, in order, with the model id each knows it by (router/policy.py:
   ``candidates``).
3. Each one is admitted or skipped without a call: policy (disabled, keyless, paid without
   consent, local only: router/policy.py ``gate``); a ledger that cannot record closes the
   providers that cost money (here); breaker, cooldown and readiness (router/health.py); which
   model it has (router/catalog.py); a connection slot (router/slots.py); the day's budget
   (router/money/budget.py).
4. The call: deadlines, the SSE stream, bounded reads (router/streaming.py); the provider's
   wire format and its errors (its adapter in router/providers/).
5. A failure's meaning — fail over, rest the provider, or give the request back — is decided
   by router/policy.py ``reaction`` and applied to health by router/health.py; what the caller
   has already seen decides whether it can still fail over (``_failed``, here).
6. What it used and cost, the budget settled, the ledger's rows (router/money/accounting.py,
   router/ledger/ledger.py); what happened, as events (router/events.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Mapping
from contextlib import AsyncExitStack, aclosing, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from router import catalog
from router.accounts.watch import AccountWatch
from router.config import Config, ProviderConfig
from router.errors import (
    Attempt,
    NoProviderAvailable,
    Outcome,
    ProviderFailure,
    RequestRejected,
    StreamBroken,
    describe_attempts,
)
from router.events import (
    EventHub,
    Failover,
    LedgerProblem,
    Listener,
    PromptProgress,
    RequestFinished,
)
from router.exo import ops as cluster_ops
from router.exo.companion import Companion
from router.health import HealthBook
from router.http.body import BodyLimits
from router.http.stack import HttpStack
from router.journey import Admitted, ChatStream, Run, Trace, usage_chunk
from router.keys import KeyStore, Secret
from router.ledger.ledger import Ledger
from router.money.accounting import Accountant
from router.money.budget import Budget, utc_now
from router.money.pricing import Pricer
from router.policy import PAID_WAITS, Candidate, candidates, charges, failover_reason, gate, reaction
from router.probing import Prober, ProviderStatus, statuses
from router.providers import CostSource, HealthState, Role, Snapshot, adapter_for
from router.providers.base import PromptRead
from router.request_check import validate_request
from router.result import Result, text_length
from router.retry import soonest
from router.slots import Slots
from router.streaming import Attempt as WireAttempt
from router.streaming import Deadlines

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Timing:
    """Clocks, and probe intervals that override the config's [health] (tests inject their own)."""

    clock: Callable[[], float] = time.monotonic  # for breakers and cooldowns
    now: Callable[[], datetime] = utc_now  # UTC wall clock, for daily budgets
    exo_probe_interval_s: float | None = None
    cloud_probe_interval_s: float | None = None


DEFAULT_TIMING = Timing()


class Router:
    """Exo-first failover router. ``async with Router(config) as router: ...``"""

    def __init__(self, config: Config, *, keys: KeyStore | None = None,
                 http: httpx.AsyncClient | None = None, ledger: Ledger | None = None,
                 timing: Timing = DEFAULT_TIMING):
        self.config = config
        self.events = EventHub()
        self.health = HealthBook(config.providers, self.events, timing.clock)
        self.budget = Budget(config, self.events, timing.now, ledger=ledger)
        self.ledger = ledger
        self.pricer = Pricer()
        self.accounts = Accountant(config, self.pricer, self.budget, self.events)
        self.local_only = False  # "pause cloud failover"
        self._adapters = {p.id: adapter_for(p.kind) for p in config.providers}
        self._keystore = keys or KeyStore()
        self._keys: dict[str, Secret | None] = {}
        self._keys_loaded: asyncio.Task[None] | None = None
        self._slots = {p.id: Slots(p.max_connections, p.max_queued) for p in config.providers}
        self._stack = HttpStack(http, chat_connections=sum(p.max_connections for p in config.providers))
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running = AsyncExitStack()  # the parts __aenter__ started (see there)
        intervals = {Role.LOCAL: timing.exo_probe_interval_s or config.health.exo_probe_interval_s,
                     Role.CLOUD: timing.cloud_probe_interval_s or config.health.cloud_probe_interval_s}
        self.prober = Prober(config, self.health, self._adapters, self.key, self.http, intervals)
        self.catalog = catalog.Catalog(self)
        self.companion = Companion(self)  # warms models on a local cluster; watches it
        self.account_watch = self._watch_accounts()  # credit warnings, limits, ledger vs bill

    # -- lifecycle ------------------------------------------------------------------------
    def _watch_accounts(self) -> AccountWatch:
        """The accounts' watch, given what it needs: every probe's result and every finished
        request reach it."""
        watch = AccountWatch(self.config, lambda: self.health, self.events, self.probe,
                             self.spawn, self.has_key, self.in_flight,
                             self.health.clock, self.budget.now, self.ledger)
        self.prober.listeners.append(watch.observe)
        self.events.subscribe(watch.on_event)
        return watch

    # Each part's start and stop together, composed in one place (as aiohttp's cleanup
    # contexts): started in this order, stopped in the reverse, also when a later one fails.
    async def __aenter__(self) -> Router:
        try:
            for part in (self._http_stack, self._background_tasks, self._ledger_told,
                         self._keys_and_prices):
                await self._running.enter_async_context(part())
        except BaseException:  # nothing it started outlives it
            await self.aclose()
            raise
        return self

    @asynccontextmanager
    async def _http_stack(self) -> AsyncIterator[None]:
        """The chat wire and the probe client, loaded in a worker thread; closed last."""
        self._stack.start(self.spawn)
        try:
            yield
        finally:
            await self._stack.aclose()

    @asynccontextmanager
    async def _background_tasks(self) -> AsyncIterator[None]:
        """Every task ``spawn`` started (probes, warming, key checks): cancelled and awaited."""
        try:
            yield
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @asynccontextmanager
    async def _ledger_told(self) -> AsyncIterator[None]:
        """The ledger's writer says when it can or cannot record, while the router runs."""
        if self.ledger is None:
            yield
            return
        self._watch_ledger(self.ledger)
        try:
            yield
        finally:
            self.ledger.on_problem = None

    @asynccontextmanager
    async def _keys_and_prices(self) -> AsyncIterator[None]:
        """Keys load in the background (the keychain may be slow to answer or to import); a
        request waits for them only if it comes first. Then the paid providers' prices."""
        self._keys_loaded = self.spawn(self.reload_keys())
        self.spawn(self._refresh_prices())
        yield

    def _watch_ledger(self, ledger: Ledger) -> None:
        """The ledger's writer thread says when it can or cannot record; the router tells its
        listeners on the loop (paid providers are skipped meanwhile: see _admit)."""
        loop = asyncio.get_running_loop()

        def changed(problem: str | None) -> None:
            loop.call_soon_threadsafe(self.events.emit, LedgerProblem(problem))

        ledger.on_problem = changed
        if ledger.problem:
            self.events.emit(LedgerProblem(ledger.problem))

    async def http(self) -> httpx.AsyncClient:
        """The httpx client for probes, price lists and key checks, once it has loaded."""
        return await self._stack.http()

    async def _refresh_prices(self, paid_only: bool = True) -> None:
        """Prices for the savings figure and the reported-cost cross-check; when serving, every
        keyed cloud provider's list, which is also its model list (catalog)."""
        await self.keys_ready()
        http = await self.http()
        await asyncio.gather(*(self.pricer.refresh(http, p) for p in self.config.providers
                               if p.enabled and self.has_key(p) and (p.paid or not paid_only)))

    async def keys_ready(self) -> None:
        if self._keys_loaded is not None and not self._keys_loaded.done():
            await asyncio.shield(self._keys_loaded)

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop every part __aenter__ started, in the reverse order."""
        await self._running.aclose()

    async def reload_keys(self) -> None:
        """Read every provider's key (env, then keychain) off the event loop."""
        keyed = [p for p in self.config.providers if p.traits.takes_key]
        found = await asyncio.to_thread(self._keystore.get_all, keyed)
        for provider_id, key in found.items():
            if key != self._keys.get(provider_id):
                self.health.reset_key(provider_id)
        self._keys = found

    def reconfigure(self, config: Config) -> None:
        """Take on a new config in place (the settings window's save, the first-run assistant):
        requests in flight finish on the provider they hold; the next ones follow the new
        order, limits, addresses and consent. What each provider has learnt (breakers, cooldowns,
        the day's usage) is kept; a provider new to the config starts afresh. Connection limits
        (max_connections) keep their value until the next start."""
        self.config = config
        self.budget.config = config
        self.accounts.config = config
        self.prober.config = config
        self.health.take(config.providers)
        for p in config.providers:
            if p.id not in self._adapters or self._adapters[p.id].kind.name != p.kind:
                self._adapters[p.id] = adapter_for(p.kind)
            self._slots.setdefault(p.id, Slots(p.max_connections, p.max_queued)).max_queued = \
                p.max_queued
        self.account_watch.take(config)
        self.companion.take(config)
        self.spawn(self.reload_keys())  # a provider new to the config may have a key

    def forget_health(self) -> None:
        """Start afresh: no breakers, cooldowns or probe results (one-shot use, benchmarks)."""
        self.health = HealthBook(self.config.providers, self.events, self.health.clock)
        self.prober.health = self.health  # the probes write where admission reads

    @property
    def keychain_error(self) -> str | None:
        return self._keystore.keychain_error

    def has_key(self, provider: ProviderConfig) -> bool:
        return self._keys.get(provider.id) is not None

    def in_flight(self, provider_id: str) -> int:
        """Requests holding one of the provider's connections now."""
        return self._slots[provider_id].in_use

    def key(self, provider: ProviderConfig) -> Secret | None:
        return self._keys.get(provider.id)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self.events.subscribe(listener)

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- requests -------------------------------------------------------------------------
    async def accept(self, request: Mapping[str, Any]) -> None:
        """Check a request before it is routed (the endpoint answers 400 or 404 before anything
        is sent); then route it with ``checked=True``, so it is not checked twice."""
        validate_request(request)
        await self.catalog.check(request.get("model"))

    async def chat(self, request: Mapping[str, Any], *, checked: bool = False) -> Result:
        async with ChatStream(lambda sink: self._route(request, sink, False, checked)) as stream:
            async for _ in stream.batches():
                pass
        assert stream.result is not None
        return stream.result

    def stream(self, request: Mapping[str, Any], *, checked: bool = False,
               paid: bool = True) -> ChatStream:
        """The answer as it streams in. ``paid=False``: no provider that would charge for it is
        asked (each is an attempt with PAID_WAITS: the chat asks the user first)."""
        return ChatStream(lambda sink: self._route(request, sink, True, checked, paid))

    def next_answer(self, model: str) -> Candidate | None:
        """Who would answer a request for ``model`` now, from what is already known (no call
        is made and nothing changes): the first provider the policy lets through that is not
        known to be down, keyless or off; None when nobody would."""
        model = model or self.config.default_model or ""
        states = {s.id: s.state for s in self.statuses()}
        for candidate in candidates(self.config, model):
            provider = candidate.provider
            if states.get(provider.id) in (HealthState.DOWN, HealthState.NO_KEY,
                                           HealthState.DISABLED):
                continue
            if gate(self.config, candidate, model, has_key=self.has_key(provider),
                    local_only=self.local_only) is None and not self._closed_for_money(provider):
                return candidate
        return None

    async def _route(self, request: Mapping[str, Any], sink: ChatStream, streamed: bool,
                     checked: bool, paid: bool = True) -> AsyncGenerator[list[dict[str, Any]], None]:
        if not checked:
            validate_request(request)
        trace = await self._trace(request, sink, streamed)
        model = trace.logical_model
        for candidate in candidates(self.config, model):
            admitted = await self._admit(candidate, model, request, paid)
            if isinstance(admitted, Attempt):
                trace.attempts.append(admitted)
                continue
            run = self._start(trace, candidate.provider, admitted, request)
            async with aclosing(self._relay(trace, run, sink)) as relay:
                async for ready in relay:
                    yield ready
            if sink.result is not None:
                yield [usage_chunk(sink.result)]
                return
        self._finish(trace, None)
        self.catalog.raise_if_unknown(model, trace.attempts)  # what was learnt on the way
        raise NoProviderAvailable("no provider could answer: " + describe_attempts(trace.attempts),
                                  trace.attempts, retry_after_s=self.retry_after(trace.attempts))

    async def _relay(self, trace: Trace, run: Run,
                     sink: ChatStream) -> AsyncGenerator[list[dict[str, Any]], None]:
        """One attempt's chunks as the caller may see them. It ends with ``sink.result`` set
        (answered, recorded) or with the failure recorded (the router then fails over, unless
        ``_failed`` raised because it may not)."""
        try:
            async with aclosing(run.wire.batches()) as batches:
                async for batch in batches:
                    if ready := await self._released(run, batch):
                        sink.provider = run.provider.id
                        yield ready
                    if run.capped:  # its hold ended: no more is read (or paid for)
                        break
            if run.held:  # an answer without any content token
                sink.provider = run.provider.id
                yield run.held
            await self._prices_for(run.provider)
        except ProviderFailure as failure:
            self._failed(trace, run, failure)
            return
        except (asyncio.CancelledError, GeneratorExit):
            self._cancelled(trace, run)
            raise
        except Exception as exc:  # a defect of ours: the attempt is still classified and recorded
            log.exception("unexpected error reading %s's answer", run.provider.id)
            self._failed(trace, run, ProviderFailure(
                Outcome.BAD_RESPONSE, f"unexpected {type(exc).__name__} reading the answer"))
            return
        finally:
            self._slots[run.provider.id].release()
        sink.result = self._succeeded(trace, run)
        self.accounts.record(self.ledger, trace, sink.result)  # journaled before it is delivered

    def retry_after(self, attempts: list[Attempt] | tuple[Attempt, ...]) -> float | None:
        """When one of these attempts' providers could answer again (None: not by itself)."""
        reset = (self.budget.resets_at() - self.budget.now()).total_seconds()
        return soonest(attempts, self.health, self.prober.every, reset)

    async def _released(self, run: Run, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A batch as the caller may see it; past the reservation, hold more if the answer may
        grow and the day's limits allow it, else end the answer there."""
        ready = run.release(batch)
        while run.over:
            pending, run.over = run.over, []
            if run.reservation.growable and await self.budget.extend(run.provider, run.reservation):
                ready += run.release(pending)
            else:
                ready += run.cut()
        return ready

    async def _trace(self, request: Mapping[str, Any], sink: ChatStream, streamed: bool) -> Trace:
        model = str(request.get("model") or self.config.default_model or "")
        if not model:
            raise RequestRejected("no model given and the config has no model alias")
        if self._keys_loaded is not None and not self._keys_loaded.done():
            await self.keys_ready()
        if self._stack.loaded_wire is None:
            await self._stack.wire()
        trace = Trace(uuid.uuid4().hex, model, streamed, text_length(request.get("messages")))
        trace.attempts = sink.attempts
        sink.request_id = trace.request_id
        return trace

    async def _admit(self, candidate: Candidate, model: str, request: Mapping[str, Any],
                     paid: bool = True) -> Admitted | Attempt:
        """What to send where, or the Attempt that records why the provider is skipped."""
        provider = candidate.provider
        skip = self._skip(candidate, model)
        if skip is None and not paid and charges(candidate):
            skip = (Outcome.NOT_ALLOWED, PAID_WAITS)
        if skip is not None:
            return Attempt(provider.id, skip[0], skip[1], called=False)
        if provider.traits.local and self.health.is_stale(provider.id, self.prober.readiness_age()):
            snapshot = await self.probe(provider)
            if snapshot.state is HealthState.DOWN:
                outcome = Outcome.TIMEOUT if "timeout" in snapshot.detail else Outcome.REFUSED
                return Attempt(provider.id, outcome, snapshot.detail, snapshot.latency_ms)
        admission = self.health.admit_model(provider.id, candidate.model_ids)
        if model not in self.config.models and catalog.unlisted(self.pricer, provider, model):
            return Attempt(provider.id, Outcome.MODEL_UNAVAILABLE,
                           f"{provider.name} does not list {model}", called=False)
        if admission.skip is not None or admission.model_id is None:
            outcome, detail = admission.skip or (Outcome.MODEL_UNAVAILABLE, "")
            return Attempt(provider.id, outcome, detail, called=False)
        return await self._hold(provider, admission.model_id, request)

    def _skip(self, candidate: Candidate, model: str) -> tuple[Outcome, str] | None:
        """Why the provider is passed over without a call, from what is known already."""
        provider = candidate.provider
        skip = gate(self.config, candidate, model, has_key=self.has_key(provider),
                    local_only=self.local_only)
        if skip is None and self._closed_for_money(provider):
            assert self.ledger is not None
            skip = (Outcome.NOT_ALLOWED, "paid providers are off while the usage ledger cannot "
                    f"record: {self.ledger.problem}")
        return skip if skip is not None else self.health.admit_provider(provider.id)

    def _closed_for_money(self, provider: ProviderConfig) -> bool:
        """A ledger that cannot record closes the providers that cost money (exo stays open)."""
        return provider.costs_money and self.ledger is not None and not self.ledger.can_record

    async def _hold(self, provider: ProviderConfig, model_id: str,
                    request: Mapping[str, Any]) -> Admitted | Attempt:
        """A connection slot (waiting in the provider's queue) and a budget hold."""
        since = asyncio.get_running_loop().time()
        waited = await self._slots[provider.id].take(provider, since)
        if waited is not None:
            return waited
        price = self.pricer.table_price(provider, model_id, {})
        try:
            reservation = await self.budget.reserve(provider, request, price)
        except BaseException:  # cancelled while the hold was decided: the slot goes back
            self._slots[provider.id].release()
            raise
        if isinstance(reservation, str):
            self._slots[provider.id].release()
            return Attempt(provider.id, Outcome.OVER_BUDGET, reservation, called=False)
        known = self.health[provider.id].snapshot
        node = known.node if known is not None and known.node else provider.base_url
        return Admitted(model_id, self._adapters[provider.id].chat_url(node), reservation, since)

    def _start(self, trace: Trace, provider: ProviderConfig, admitted: Admitted,
               request: Mapping[str, Any]) -> Run:
        adapter = self._adapters[provider.id]
        loaded = self._stack.loaded_wire
        assert loaded is not None  # _trace waited for it
        emit, request_id = self.events.emit, trace.request_id

        def progressed(read: PromptRead) -> None:
            emit(PromptProgress(request_id, provider.id, read.done, read.total))

        wire = WireAttempt(loaded, adapter, admitted.url, adapter.body(request, admitted.model_id),
                           self._keys.get(provider.id), Deadlines.of(provider, admitted.since),
                           BodyLimits.of(provider))
        if adapter.progress_comment is not None:
            wire.on_progress = progressed
        return Run(provider, admitted.model_id, wire, admitted.reservation)

    async def _prices_for(self, provider: ProviderConfig) -> None:
        """A cost from the price table needs the table now; a reported one only for the anomaly
        check, fetched in the background."""
        traits = provider.traits
        if traits.price_list is None:
            return
        if traits.cost is CostSource.PRICE_TABLE:
            await self.pricer.refresh(await self.http(), provider)
        elif provider.id not in self.pricer.tables:
            self.spawn(self.pricer.refresh(await self.http(), provider))

    # -- endings --------------------------------------------------------------------------
    def _failed(self, trace: Trace, run: Run, failure: ProviderFailure) -> None:
        """Record it (a cut one too, with its tokens); fail over unless the caller has part of
        the answer (a stream) or the request was at fault."""
        failure = self.account_watch.informed(run.provider, failure)  # a cap's reset time
        self.health.record_failure(run.provider.id, run.model_id, failure)
        self.account_watch.limited(run.provider, failure)
        cut = run.wire.content_started  # a bad answer stays one; any other failure cut it
        outcome = failure.outcome if not cut or failure.outcome is Outcome.BAD_RESPONSE \
            else Outcome.STREAM_CUT
        trace.attempts.append(self.accounts.attempt(trace, run, outcome, failure.detail))
        if cut and trace.streamed:
            self._finish(trace, None)
            raise StreamBroken(f"{run.provider.name} failed mid-answer: {failure.detail}",
                               trace.attempts) from None
        if reaction(failure).return_to_caller:
            self._finish(trace, None)
            raise RequestRejected(f"{run.provider.name} rejected the request: {failure.detail}",
                                  trace.attempts) from None

    def _cancelled(self, trace: Trace, run: Run) -> None:
        trace.attempts.append(self.accounts.attempt(trace, run, Outcome.CANCELLED,
                                                   "the caller went away"))
        self._finish(trace, None)
        cluster_ops.cancel_upstream(self._adapters[run.provider.id], run,
                                    self.health[run.provider.id].snapshot, self.spawn, self.http)

    def _succeeded(self, trace: Trace, run: Run) -> Result:
        self.health.record_success(run.provider.id, run.ms())
        record = self.accounts.attempt(trace, run, Outcome.OK, "")
        trace.attempts.append(record)
        result = self.accounts.result(trace, run, record)
        self._finish(trace, result)
        return result

    def _finish(self, trace: Trace, result: Result | None) -> None:
        attempts = tuple(trace.attempts)
        if result is not None:
            passed = failover_reason([(a.provider, a.outcome) for a in attempts[:-1]])
            if passed is not None:
                self.events.emit(Failover(trace.request_id, passed[0], result.provider_used,
                                          passed[1]))
        self.events.emit(RequestFinished(trace.request_id, trace.logical_model, trace.streamed,
                                         attempts, result))
        if result is None:
            self.accounts.record(self.ledger, trace, None)

    # -- health ---------------------------------------------------------------------------
    async def probe(self, provider: ProviderConfig) -> Snapshot:
        """Probe now; concurrent callers share one probe. A keyed provider is probed with its
        key (a probe asked for while the keys still load waits for them)."""
        if provider.traits.takes_key:
            await self.keys_ready()
        return await self.prober.probe(provider)

    async def check_all(self) -> list[ProviderStatus]:
        """Check every enabled provider that can be checked now (local: liveness and readiness;
        cloud: the cheap authenticated check), then report them all."""
        await self.keys_ready()
        await self.prober.check_all()
        return self.statuses()

    async def test_key(self, provider_id: str) -> Snapshot:
        """The cheap authenticated call of ``keys test``, with the key as stored now."""
        await self.reload_keys()
        provider = self.config.provider(provider_id)
        if provider.needs_key and not self.has_key(provider):
            return Snapshot(HealthState.NO_KEY, "no API key")
        return await self.probe(provider)

    def statuses(self) -> list[ProviderStatus]:
        return [replace(s, account=self.account_watch.status(s.id)) for s in
                statuses(self.config, self.health, self.budget, self.ledger, self.has_key)]

    # -- models ---------------------------------------------------------------------------
    def known_models(self) -> dict[str, str]:
        """Model id -> who serves it: the aliases, then every model a provider is known to list."""
        return self.catalog.known_models()

    def start_probes(self) -> None:
        """Keep probing in the background (``serve`` and the tray app): local providers every
        few seconds (free liveness), the cloud rarely (a cheap authenticated call, never a
        completion); and every keyed cloud provider's model list, for the catalog."""
        self.prober.start(self.spawn, after=self.keys_ready)
        self.companion.start()
        self.account_watch.watching = True  # after traffic, and the ledger vs the bill daily
        self.catalog.loading = self.spawn(self._refresh_prices(paid_only=False))
