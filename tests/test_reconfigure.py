"""Router.reconfigure (Settings' save, the first-run assistant) and the chat's paid=False:
new settings taken on by a running router, against the fake providers."""

from __future__ import annotations

import pytest

from router import PAID_WAITS, NoProviderAvailable, Router, charges, parse_config
from tests.conftest import config_text, unused_port

ASK = {"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi"}]}


async def test_a_new_config_is_followed_at_once_and_what_was_learnt_is_kept(
        make_config, exo, openrouter, hf, keys_in_env):
    config, _ = make_config()
    async with Router(config) as router:
        assert (await router.chat(ASK)).provider_used == "exo"
        exo_health = router.health["exo"]
        text = config_text([exo.origin], openrouter.base_url, hf.base_url).replace(
            'name = "Exo Local"', 'name = "Exo Local"\nenabled = false').replace(
            "daily_request_limit = 1000", "daily_request_limit = 1")
        router.reconfigure(parse_config(text, "new"))
        assert router.health["exo"] is exo_health  # not started afresh
        assert (await router.chat(ASK)).provider_used == "openrouter"
        assert (await router.chat(ASK)).provider_used == "huggingface"  # its new limit of 1
        assert router.budget.config is router.config and router.prober.config is router.config


async def test_a_new_exo_address_is_probed_and_used(make_config, exo, openrouter, hf, keys_in_env):
    closed = f"http://127.0.0.1:{unused_port()}"
    config, _ = make_config()
    text = config_text([closed], openrouter.base_url, hf.base_url)
    async with Router(parse_config(text, "old")) as router:
        assert (await router.chat(ASK)).provider_used == "openrouter"
        router.reconfigure(config)  # the assistant's "Use http://…"
        await router.probe(router.config.provider("exo"))
        assert router.companion._watches["exo"].provider.base_urls == (exo.origin,)
        assert (await router.chat(ASK)).provider_used == "exo"


async def test_paid_false_asks_no_provider_that_would_charge(make_config, exo, openrouter, hf,
                                                             keys_in_env):
    config, _ = make_config()
    async with Router(config) as router:
        exo.stop()
        await router.probe(config.provider("exo"))
        candidate = router.next_answer("llama-3.2-3b")
        assert candidate is not None and candidate.provider.id == "openrouter" and charges(candidate)
        with pytest.raises(NoProviderAvailable) as caught:
            async with router.stream(ASK, paid=False) as stream:
                async for _ in stream:
                    pass
        waiting = [a.provider for a in caught.value.attempts if a.detail == PAID_WAITS]
        assert waiting == ["openrouter", "huggingface"]  # both bill: neither is asked
        assert openrouter.chat_requests == [] and hf.chat_requests == []
        exo.start()
        await router.probe(config.provider("exo"))
        async with router.stream(ASK, paid=False) as stream:  # free: no yes needed
            async for _ in stream:
                pass
        assert stream.result is not None and stream.result.provider_used == "exo"
