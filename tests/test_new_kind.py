"""Adding a provider kind is one adapter module and one registry line (README, Development)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from router import Router, parse_config
from router.money.prices import PriceTable, per_million, usable_price
from router.providers import _ADAPTERS
from router.providers.base import CostSource, Kind, Role
from router.providers.openai_compat import OpenAICompatible
from tests.fakes.provider import FakeProvider


class Acme(OpenAICompatible):
    """The README's worked example."""

    kind: ClassVar[Kind] = Kind(
        "acme", Role.CLOUD, takes_key=True, needs_key=True, bills=True,
        default_base_url="https://api.acme.example/v1", deadlines=(5.0, 30.0, 60.0),
        several_nodes=False, cost=CostSource.PRICE_TABLE, price_list="/models")

    def parse_prices(self, listing: Any, now: float) -> PriceTable:
        return PriceTable({m["id"]: {"*": price} for m in listing.get("data", [])
                           if (price := usable_price(per_million(m.get("input_price")),
                                                     per_million(m.get("output_price"))))}, now)


@pytest.fixture
def acme_registered(monkeypatch):
    monkeypatch.setitem(_ADAPTERS, "acme", Acme)  # the one registry line


async def test_a_new_kind_works_everywhere_from_its_description(acme_registered, monkeypatch):
    fake = FakeProvider("openai", valid_keys={"acme-key-0123456789"}, models=["acme-large"])
    try:
        monkeypatch.setenv("ACME_KEY", "acme-key-0123456789")
        config = parse_config(f'[[providers]]\nid = "acme"\nkind = "acme"\n'
                              f'base_url = "{fake.base_url}"\napi_key_env = "ACME_KEY"\n', "t")
        provider = config.provider("acme")
        assert provider.traits is Acme.kind and provider.needs_key and provider.costs_money
        assert (provider.connect_timeout_s, provider.idle_timeout_s) == (5.0, 60.0)
        async with Router(config) as router:
            result = await router.chat({"model": "acme-large",
                                        "messages": [{"role": "user", "content": "hi"}]})
        assert result.provider_used == "acme" and result.text.startswith("Hello")
        default = parse_config('[[providers]]\nid = "acme"\nkind = "acme"\n', "t")
        assert default.provider("acme").base_url == "https://api.acme.example/v1"
    finally:
        fake.close()
