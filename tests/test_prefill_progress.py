"""exo's prefill progress comments (``: prefill_progress {...}``) read by its adapter: any bytes
give a sane PromptRead or None, never an exception; ``prefill_timeout_s`` in the config."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.config import parse_config
from router.errors import ConfigError
from router.providers.exo import Exo

ADAPTER = Exo()


@given(st.binary(max_size=300))
def test_any_bytes_give_a_sane_reading_or_none(report: bytes):
    read = ADAPTER.prompt_read(report)
    assert read is None or (0 <= read.done <= read.total and read.total > 0
                            and 0 <= read.percent <= 100)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


@given(st.one_of(st.integers(), st.floats(), st.booleans(), st.none(), st.text(), json_values),
       st.one_of(st.integers(), st.floats(), st.booleans(), st.none(), st.text(), json_values),
       st.booleans())
def test_hostile_counts_are_refused_and_whole_ones_read(done, total, tagged):
    body = {"model": "m", "processed_tokens": done, "total_tokens": total}
    report = json.dumps({"PrefillProgressChunk": body} if tagged else body).encode()
    read = ADAPTER.prompt_read(report)
    whole = type(done) is int and type(total) is int and total > 0 and done >= 0
    assert (read is not None) == whole
    if read is not None:
        assert (read.done, read.total) == (min(done, total), total)


def test_exo_s_own_report_reads_as_its_percentage():
    report = b'{"PrefillProgressChunk":{"model":"mlx-community/Llama-3.2-1B-Instruct-4bit",' \
             b'"processed_tokens":5670,"total_tokens":9000}}'
    read = ADAPTER.prompt_read(report)
    assert read is not None and (read.done, read.total, read.percent) == (5670, 9000, 63)
    assert Exo.progress_comment == b": prefill_progress "


CONFIG = """
[[providers]]
id = "exo"
kind = "exo"
base_urls = ["http://127.0.0.1:52415"]
{line}
"""


def test_prefill_timeout_s_has_a_default_and_is_checked():
    assert parse_config(CONFIG.format(line=""), "t").provider("exo").prefill_timeout_s == 300.0
    assert parse_config(CONFIG.format(line="prefill_timeout_s = 90"), "t") \
        .provider("exo").prefill_timeout_s == 90.0
    for bad in ('"soon"', "-1", "1e9"):
        with pytest.raises(ConfigError, match="prefill_timeout_s"):
            parse_config(CONFIG.format(line=f"prefill_timeout_s = {bad}"), "t")


@pytest.mark.usefixtures("keys_in_env")
@pytest.mark.parametrize(("fault", "said", "least", "most"), [
    ("prefill_stuck", "reading the prompt stopped at 10%: no progress and no first token for 0.5s",
     0.5, 1.5),
    ("prefill_endless", "still reading the prompt (0%) after 1.5s (prefill_timeout_s)", 1.5, 2.5),
])
async def test_progress_that_stands_still_or_never_ends_is_bounded(exo, openrouter, hf, fault, said,
                                                                   least, most):
    """A report that repeats itself moves no deadline; reports that move on for ever stop at
    prefill_timeout_s; either way the request goes on to the next provider, said plainly."""
    import time

    from router import Router
    from tests.conftest import config_text

    exo.fault, exo.keep_alive_s, exo.fault_after_tokens = fault, 0.05, 0
    text = config_text([exo.origin], openrouter.base_url, hf.base_url, first_token_s=0.5,
                       exo_extra="prefill_timeout_s = 1.5")
    async with Router(parse_config(text, "t")) as router:
        started = time.monotonic()
        result = await router.chat({"model": "llama-3.2-3b",
                                    "messages": [{"role": "user", "content": "hi"}]})
        took = time.monotonic() - started
    assert result.provider_used == "openrouter"
    assert (result.attempts[0].outcome, result.attempts[0].detail) == ("timeout", said)
    assert least <= took < most


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.usefixtures("keys_in_env")
async def test_ask_stream_rewrites_the_progress_line_on_a_terminal_and_clears_it(exo, openrouter, hf):
    from router import Router
    from router.cli.stream import StreamPrinter
    from tests.conftest import config_text

    text = config_text([exo.origin], openrouter.base_url, hf.base_url)
    out, err = io.StringIO(), _Terminal()
    async with Router(parse_config(text, "t")) as router:
        printer = StreamPrinter(router, echo=True, out=out, err=err)
        result = await printer.answer({"model": "llama-3.2-3b",
                                       "messages": [{"role": "user", "content": "hi"}]})
    assert result.provider_used == "exo"
    # the fake exo reports the whole prompt read at once: one line, rewritten, then wiped
    assert err.getvalue() == "\r\x1b[KExo Local: reading the prompt 100%\r\x1b[K"
    assert out.getvalue() == "Hello from the fake provider . \n"
