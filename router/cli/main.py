"""The headless commands: ``exo-bridge ask | status | keys``.

Exit codes: 0 answered / OK, 2 bad usage or a bad config file, 3 no provider could answer
(or a stream broke after its first token, or a key check failed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from router import crashes, setup_guide
from router.cli import accounts
from router.cli import exo as cli_exo
from router.cli import keys as cli_keys
from router.cli.stream import StreamPrinter
from router.config import Config, data_dir, load_config
from router.core import Router
from router.endpoint.server import LOOPBACK_HOSTS, EndpointServer
from router.errors import (
    Attempt,
    ConfigError,
    EndpointError,
    ExoBridgeError,
    KeychainUnavailable,
    NoProviderAvailable,
    RoutingError,
    StreamBroken,
)
from router.keys import Secret, endpoint_token
from router.ledger import usage as usage_report
from router.ledger.ledger import Ledger, LedgerUnavailable
from router.money.terms import CostSource
from router.money.usd import usd
from router.probing import ProviderStatus
from router.redact import redact_logs
from router.result import Result, cost_text, tokens_text

EXIT_OK, EXIT_USAGE, EXIT_UNANSWERED = 0, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="exo-bridge", description="Exo-first LLM router: your exo cluster first (free), "
        "then the cloud only when it must.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument("--config", metavar="FILE", help="config TOML (default: $EXO_BRIDGE_CONFIG "
                        "or config.toml in the user config dir)")

    ask = sub.add_parser("ask", parents=[config], help="ask one question")
    ask.add_argument("prompt", help="the prompt ('-' reads standard input)")
    ask.add_argument("--model", help="a model alias or a provider's model id "
                     "(default: the config's first alias)")
    ask.add_argument("--stream", action="store_true", help="print the answer as it arrives")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.set_defaults(func=cmd_ask)

    status = sub.add_parser("status", parents=[config], help="check every provider now")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    cli_keys.add_commands(sub, config)

    usage = sub.add_parser("usage", parents=[config], help="requests, tokens, cost, failovers, savings")
    span = usage.add_mutually_exclusive_group()
    span.add_argument("--days", type=_positive_int, default=7, help="the last N days (default 7)")
    span.add_argument("--since", type=_date, metavar="YYYY-MM-DD", help="from this UTC day on")
    usage.add_argument("--by", choices=("day", "week", "month"), default="day")
    shape = usage.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true")
    shape.add_argument("--csv", action="store_true")
    usage.add_argument("--reconcile", action="store_true", help="compare today's recorded cost "
                       "with what the provider billed the key (its key call, no completion)")
    usage.set_defaults(func=cmd_usage)

    serve = sub.add_parser("serve", parents=[config], help="run the local OpenAI-compatible endpoint")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8741)")
    serve.set_defaults(func=cmd_serve)
    token = sub.add_parser("token", help="print the local endpoint's access token")
    token.set_defaults(func=cmd_token)
    cli_exo.add_commands(sub, config)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-01") from None


def main(argv: Sequence[str] | None = None) -> int:
    redact_logs()
    logging.basicConfig(level=logging.WARNING, format="exo-bridge: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_OK
    try:
        return int(args.func(args))
    except (ConfigError, KeychainUnavailable, LedgerUnavailable, EndpointError) as exc:
        print(f"exo-bridge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ExoBridgeError as exc:
        print(f"exo-bridge: {exc}", file=sys.stderr)
        return EXIT_UNANSWERED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("EXO_BRIDGE_DEBUG"):
            raise
        print(f"exo-bridge: unexpected error ({exc.__class__.__name__}); run again with "
              "EXO_BRIDGE_DEBUG=1 to see where", file=sys.stderr)
        return 1


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config)


@contextmanager
def _ledger(*, required: bool = False) -> Iterator[Ledger]:
    """The usage ledger. One that cannot record still lets exo answer (paid providers are off
    until it can: their spending could not be recorded); ``required`` makes it an error."""
    ledger = Ledger.in_dir(data_dir())
    try:
        if ledger.notice:
            print(f"exo-bridge: {ledger.notice}", file=sys.stderr)
        if ledger.problem:
            if required:
                raise LedgerUnavailable(ledger.problem)
            print(f"exo-bridge: warning: {ledger.problem}; paid providers are off until the "
                  "ledger can record", file=sys.stderr)
        yield ledger
    finally:
        ledger.close()


# -- ask -----------------------------------------------------------------------------------
def cmd_ask(args: argparse.Namespace) -> int:
    config = _config(args)
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    request: dict[str, Any] = {"messages": [{"role": "user", "content": prompt}]}
    if args.model:
        request["model"] = args.model
    return asyncio.run(_ask(config, request, stream=args.stream, as_json=args.json))


async def _ask(config: Config, request: dict[str, Any], *, stream: bool, as_json: bool) -> int:
    with _ledger() as ledger:
        return await _unless_stopped(_ask_with(Router(config, ledger=ledger), request,
                                               stream=stream, as_json=as_json))


async def _unless_stopped(work: Coroutine[Any, Any, int]) -> int:
    """SIGTERM and SIGHUP end ``ask`` as Ctrl-C does: the answer in flight is cancelled and
    recorded with what it used (killed outright, its budget hold would count all day)."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    received: list[int] = []

    def stop(signum: int) -> None:
        received.append(signum)
        task.cancel()

    handled = []
    for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
                loop.add_signal_handler(signum, stop, signum)
                handled.append(signum)
    try:
        return await task
    except asyncio.CancelledError:
        if not received:
            raise
        print(f"exo-bridge: stopped by {signal.Signals(received[0]).name}; what the answer "
              "used so far is recorded", file=sys.stderr)
        return 128 + received[0]
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


async def _ask_with(router: Router, request: dict[str, Any], *, stream: bool, as_json: bool) -> int:
    async with router:
        printer = StreamPrinter(router, echo=not as_json)
        try:
            if stream:
                result = await printer.answer(request)
            else:
                result = await router.chat(request)
        except StreamBroken as exc:
            if as_json:
                _report_failure(exc, as_json)
            else:  # after the partial answer: what arrived, that it broke, from whom
                print(printer.broken(exc), file=sys.stderr)
                _report_attempts(exc.attempts)
            return EXIT_UNANSWERED
        except RoutingError as exc:
            advice = setup_guide.router_guidance(router, exc.attempts, str(request.get("model") or "")) \
                if isinstance(exc, NoProviderAvailable) else []
            _report_failure(exc, as_json, advice)
            return EXIT_UNANSWERED
    if as_json:
        print(json.dumps(result.as_json(), ensure_ascii=False, allow_nan=False))
    else:
        if not stream:
            print(result.text)
        _report_attempts(result.attempts)
        print(_summary(result), file=sys.stderr)
    return EXIT_OK


def _summary(result: Result) -> str:
    source = "" if result.cost_source == CostSource.FREE else f" ({result.cost_source})"
    return (f"answered by {result.provider_used} ({result.model}) · {tokens_text(result.usage)} · "
            f"{cost_text(result)}{source} · {result.latency_ms:.0f} ms")


def _report_attempts(attempts: Sequence[Attempt]) -> None:
    for a in attempts:
        if a.outcome != "ok":
            detail = f" ({a.detail})" if a.detail else ""
            print(f"  {a.provider}: {a.outcome}{detail} · {a.latency_ms:.0f} ms", file=sys.stderr)


def _report_failure(exc: RoutingError, as_json: bool,
                    advice: Sequence[setup_guide.Advice] = ()) -> None:
    if as_json:
        body: dict[str, Any] = {"error": str(exc), "response": None, "provider_used": None,
                                "model": None, "cost_usd": 0.0, "usage": {},
                                "attempts": [a.as_dict() for a in exc.attempts]}
        if advice:  # what to do, per provider (the same paragraphs as on stderr)
            body["guidance"] = [{"provider": a.provider, "text": a.text,
                                 "commands": list(a.commands)} for a in advice]
        print(json.dumps(body, ensure_ascii=False))
        return
    if not advice:
        print(f"exo-bridge: {exc.__class__.__name__}: no answer", file=sys.stderr)
        _report_attempts(exc.attempts)
        return
    print("exo-bridge: no provider could answer. To get an answer:\n", file=sys.stderr)
    for item in advice:
        print(f"  {item.text}\n", file=sys.stderr)
    print("what happened:", file=sys.stderr)
    _report_attempts(exc.attempts)


# -- status --------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    config = _config(args)
    statuses, keychain_error, ledger, cluster = asyncio.run(_check(config))
    crash = crashes.detect()
    if keychain_error:
        print(f"exo-bridge: {keychain_error}", file=sys.stderr)
    if args.json:
        print(json.dumps({"providers": [_status_json(s) for s in statuses], "ledger": ledger,
                          "last_crash": _crash_json(crash), "cluster": cli_exo.status_json(cluster)},
                         ensure_ascii=False, allow_nan=False))
        return EXIT_OK
    for s in statuses:
        progress = f" [{s.download_progress:g}%]" if s.download_progress is not None else ""
        print(f"{s.id:<14} {s.state:<9} {s.latency_ms:>7.1f} ms  {s.detail}{progress}"
              f"  [{_today_text(s)}]")
        for line in accounts.status_lines(s):
            print(f"{'':<14} {line}")
    for line in cli_exo.status_text(cluster):
        print(line)
    if ledger["problem"]:
        print(f"usage ledger: cannot record — {ledger['problem']}; paid providers are off until "
              "it can")
    if ledger["quarantined"]:
        print(f"usage ledger: {ledger['quarantined']} row(s) quarantined in {ledger['quarantine']}")
    if crash is not None:
        print(f"last crash: the {crash.kind} app, {_local_time(crash.at)}: {crash.summary} "
              f"(details in {crash.details})")
    return EXIT_OK


def _crash_json(crash: crashes.Crash | None) -> dict[str, Any] | None:
    if crash is None:
        return None
    return {"kind": crash.kind, "at": datetime.fromtimestamp(crash.at, UTC).isoformat(),
            "summary": crash.summary, "details": crash.details}


def _local_time(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


async def _check(config: Config) -> tuple[list[ProviderStatus], str | None, dict[str, Any], Any]:
    with _ledger() as ledger:
        async with Router(config, ledger=ledger) as router:
            statuses = await router.check_all()
        return statuses, router.keychain_error, ledger.state(), router.companion.cluster()


def _status_json(status: ProviderStatus) -> dict[str, Any]:
    return {"id": status.id, "name": status.name, "state": status.state, "detail": status.detail,
            "latency_ms": status.latency_ms, "download_progress": status.download_progress,
            "requests_today": status.answered_today, "calls_today": status.requests_today,
            "tokens_today": status.tokens_today,
            "cost_today_usd": round(status.cost_today_usd, 8), "limits": status.limits,
            "limit": accounts.limit_json(status), "account": accounts.account_json(status)}


def _today_text(status: ProviderStatus) -> str:
    """The tray's figures (router/money/figures.py), and the tokens against their limit."""
    limit = status.limits.get("tokens")
    tokens = f"{status.tokens_today:,} tokens" + (f" of {limit:,.0f}" if limit else "")
    return f"{status.day_text()} · {tokens}"


# -- usage ---------------------------------------------------------------------------------
def cmd_usage(args: argparse.Namespace) -> int:
    config = _config(args)  # a broken config is reported even here
    until = datetime.now(UTC).date()
    since = args.since or until - timedelta(days=args.days - 1)
    complete = True
    with _ledger(required=True) as ledger:
        ledger.check_now()  # a damaged file is moved aside now, not reported as zeros
        if ledger.notice:
            print(f"exo-bridge: {ledger.notice}", file=sys.stderr)
        if args.reconcile:
            complete = accounts.report_checks(asyncio.run(accounts.reconcile_now(config, ledger)))
        rows = usage_report.summary(ledger, since, until, args.by)
        checks = accounts.stored_checks(ledger, since, until)
        quarantined = ledger.quarantined()
    totals = usage_report.totals(rows)
    if quarantined:
        print(f"exo-bridge: {quarantined} usage row(s) could not be used and are kept in "
              f"{data_dir() / 'usage.quarantine.jsonl'}", file=sys.stderr)
    if args.json:
        print(json.dumps({"rows": [r.as_dict() for r in rows], "totals": totals,
                          "quarantined": quarantined,
                          "reconciliation": [c.as_json() for c in checks]}, allow_nan=False))
    elif args.csv:
        usage_report.write_csv(rows, sys.stdout)
    else:
        _print_usage_table(rows, totals, since, until)
        accounts.print_checks(checks)
    return EXIT_OK if complete else EXIT_UNANSWERED


def _print_usage_table(rows: Sequence[usage_report.UsageRow], totals: dict[str, Any], since: date,
                       until: date) -> None:
    print(f"usage {since} .. {until} (UTC)")
    print(f"{'period':<11} {'provider':<14} {'requests':>8} {'tokens':>10} {'cost':>11} "
          f"{'failovers':>9} {'saved':>10}")
    for r in rows:
        print(f"{r.period:<11} {r.provider:<14} {r.requests:>8} "
              f"{r.prompt_tokens + r.completion_tokens:>10} {usd(r.cost_usd):>11} "
              f"{r.failovers:>9} {usd(r.saved_usd):>10}")
    tokens = totals["prompt_tokens"] + totals["completion_tokens"]
    print(f"{'total':<26} {totals['requests']:>8} {tokens:>10} "
          f"{usd(totals['cost_usd']):>11} {totals['failovers']:>9} "
          f"{usd(totals['saved_usd']):>10}")


# -- serve / token -------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    config = _config(args)
    host = args.host or config.server.host
    port = config.server.port if args.port is None else args.port
    if host not in LOOPBACK_HOSTS:
        print(f"exo-bridge: warning: listening on {host}, beyond this machine; anyone who can "
              "reach it with the token can spend your cloud credit", file=sys.stderr)
    return asyncio.run(_serve(config, host, port))


async def _serve(config: Config, host: str, port: int) -> int:
    stop = asyncio.Event()  # SIGINT / SIGTERM: finish requests in flight, then exit cleanly
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    token = await asyncio.to_thread(endpoint_token)
    watch = crashes.CrashWatch("serve")
    watch.start()
    loop.set_exception_handler(watch.loop_exception)
    try:
        await _serve_with(config, host, port, token, watch, stop)
    except BaseException as exc:
        if not isinstance(exc, KeyboardInterrupt | SystemExit | asyncio.CancelledError
                               | ExoBridgeError):
            watch.crashed(f"{exc.__class__.__name__}: {exc}")
            logging.getLogger(__name__).exception("serve stopped on an unexpected error")
        else:
            watch.stop()
        raise
    watch.stop()
    return EXIT_OK


async def _serve_with(config: Config, host: str, port: int, token: Secret,
                      watch: crashes.CrashWatch, stop: asyncio.Event) -> None:
    with _ledger() as ledger:
        async with Router(config, ledger=ledger) as router:
            server = EndpointServer(router, token=token, host=host, port=port)
            await server.start()
            router.start_probes()
            router.spawn(watch.beat())
            print(f"exo-bridge: serving {server.url} (token: `exo-bridge token`); "
                  "Ctrl-C to stop", file=sys.stderr, flush=True)
            await stop.wait()
            print("exo-bridge: stopping; finishing requests in flight", file=sys.stderr, flush=True)
            await server.stop()


def cmd_token(args: argparse.Namespace) -> int:
    print(endpoint_token().reveal())
    return EXIT_OK
