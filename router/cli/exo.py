"""``exo-bridge exo warm | reload | unload MODEL``, and the cluster's part of ``status``.

``warm`` dry-runs the placement, places the model and waits (printing download and load
progress) until its runners are ready; ``reload`` unloads a stuck model and places it again;
``unload`` frees its memory. Exit 0 done, 3 the cluster would not (the reason is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from router.config import Config, ProviderConfig, load_config
from router.core import Router
from router.exo.cluster import Cluster, Stage, Warming
from router.exo.events import ModelWarming
from router.exo.view import cluster_json, cluster_lines, failures, problem_line

WAIT_S = 3600.0  # a big model's download can take this long
EXIT_OK, EXIT_UNANSWERED = 0, 3


def add_commands(sub: Any, config: argparse.ArgumentParser) -> None:
    exo = sub.add_parser("exo", help="the local exo cluster: load, reload or unload a model")
    actions = exo.add_subparsers(dest="exo_command", metavar="ACTION", required=True)
    for name, text in (("warm", "load a model on the cluster (it is dry-run first) and wait until "
                                "it is ready"),
                       ("reload", "unload a stuck model and load it again"),
                       ("unload", "unload a model: free its memory")):
        action = actions.add_parser(name, parents=[config], help=text)
        action.add_argument("model", help="a model alias, or the cluster's model id")
        if name != "unload":
            action.add_argument("--no-wait", action="store_true",
                                help="return once it is placed, without waiting until it is ready")
        action.set_defaults(func=cmd_exo)


def cmd_exo(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    return asyncio.run(_exo(config, args.exo_command, args.model, not getattr(args, "no_wait", True)))


async def _exo(config: Config, action: str, model: str, wait: bool) -> int:
    async with Router(config) as router:
        companion = router.companion.start()
        await router.check_all()
        if action == "unload":
            await companion.unload(model)
            print(f"unloaded {model}")
            return EXIT_OK
        unsubscribe = router.subscribe(_print_progress)
        try:
            warming = await (companion.warm(model) if action == "warm" else companion.reload(model))
            if wait and warming.stage.active:
                warming = await companion.wait(model, WAIT_S)
        finally:
            unsubscribe()
    return _report(warming, wait)


def _print_progress(event: object) -> None:
    if isinstance(event, ModelWarming) and event.stage not in (Stage.READY, Stage.FAILED):
        print(f"{event.name}: {event.stage}", file=sys.stderr, flush=True)


def _report(warming: Warming, waited: bool) -> int:
    if warming.stage is Stage.FAILED:
        print(f"exo-bridge: {warming.name} cannot be loaded: {warming.detail}", file=sys.stderr)
        return EXIT_UNANSWERED
    if warming.stage is Stage.READY:
        print(f"{warming.name} is ready on exo")
    elif not waited:
        print(f"{warming.name}: {warming.stage} (follow it with `exo-bridge status`)")
    else:
        print(f"{warming.name}: still {warming.stage} {warming.detail}".rstrip())
        return EXIT_UNANSWERED
    return EXIT_OK


def status_json(found: tuple[ProviderConfig, Cluster] | None) -> dict[str, Any] | None:
    """``status --json``'s ``cluster``: what one look at the local cluster shows."""
    if found is None:
        return None
    provider, cluster = found
    return cluster_json(provider.id, cluster, problems=failures(provider.id, cluster))


def status_text(found: tuple[ProviderConfig, Cluster] | None) -> list[str]:
    if found is None:
        return []
    provider, cluster = found
    problems = failures(provider.id, cluster)
    lines = [f"{provider.name} cluster:"]
    lines += [f"  {line}" for line in cluster_lines(cluster)]
    for problem in problems:
        lines.append(f"  ! {problem_line(problem)} — `exo-bridge exo reload {problem.model}` "
                     f"(or `exo unload`)")
    return lines
