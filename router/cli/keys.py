"""`exo-bridge keys set|delete|list|test`: API keys in the OS keychain (service `exo-bridge`,
username = provider id), never in a file or on a command line."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from router.config import Config, load_config
from router.core import Router
from router.errors import ConfigError, KeychainUnavailable
from router.keys import KeyStore, keychain_delete, keychain_set

EXIT_OK, EXIT_USAGE, EXIT_UNANSWERED = 0, 2, 3


def add_commands(sub: Any, config: argparse.ArgumentParser) -> None:
    keys = sub.add_parser("keys", help="API keys in the OS keychain")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    for name, func, text in (("set", cmd_keys_set, "store a key (from stdin or a prompt)"),
                             ("delete", cmd_keys_delete, "remove a stored key"),
                             ("test", cmd_keys_test, "check a key with a cheap authenticated call")):
        action = keys_sub.add_parser(name, parents=[config], help=text)
        action.add_argument("provider", metavar="ID", help="provider id")
        action.set_defaults(func=func)
    listing = keys_sub.add_parser("list", parents=[config], help="which providers have a key")
    listing.set_defaults(func=cmd_keys_list)


def _keyed_provider(args: argparse.Namespace) -> tuple[Config, str]:
    config = load_config(args.config)
    ids = [p.id for p in config.providers if p.traits.takes_key]
    if args.provider not in ids:
        raise ConfigError(config.source, f"no cloud provider with id {args.provider!r}",
                          fix=f"use one of: {', '.join(ids) or '(none configured)'}")
    return config, args.provider


def cmd_keys_set(args: argparse.Namespace) -> int:
    config, provider_id = _keyed_provider(args)
    if sys.stdin.isatty():
        value = getpass.getpass(f"API key for {provider_id} (input hidden): ")
    else:
        value = sys.stdin.readline()
    value = value.strip()
    if not value:
        print("exo-bridge: no key given; nothing stored", file=sys.stderr)
        return EXIT_USAGE
    keychain_set(provider_id, value)
    print(f"stored the key for {provider_id} in the OS keychain")
    provider = config.provider(provider_id)
    if KeyStore().env_key(provider) is not None:
        print(f"note: ${provider.api_key_env} is set and takes precedence over the keychain",
              file=sys.stderr)
    return EXIT_OK


def cmd_keys_delete(args: argparse.Namespace) -> int:
    _, provider_id = _keyed_provider(args)
    if keychain_delete(provider_id):
        print(f"removed the key for {provider_id} from the OS keychain")
    else:
        print(f"no key for {provider_id} in the OS keychain")
    return EXIT_OK


def cmd_keys_list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    store = KeyStore()
    for provider in config.providers:
        if not provider.traits.takes_key:
            continue
        try:
            info = store.info(provider)
            where = {"none": "no key"}.get(info.source, info.source)
            print(f"{provider.id:<14} {where:<24} {info.masked}")
        except KeychainUnavailable:
            print(f"{provider.id:<14} keychain unavailable")
    return EXIT_OK


def cmd_keys_test(args: argparse.Namespace) -> int:
    config, provider_id = _keyed_provider(args)
    snapshot = asyncio.run(_test_key(config, provider_id))
    print(f"{provider_id}: {snapshot.state} · {snapshot.detail} · {snapshot.latency_ms:.0f} ms")
    return EXIT_OK if snapshot.state == "healthy" else EXIT_UNANSWERED


async def _test_key(config: Config, provider_id: str) -> Any:
    async with Router(config) as router:
        return await router.test_key(provider_id)
