"""``warm_on_exo`` under ``[models."alias"]``: "ask" (the default), "always" or "never"; anything
else is an error naming the file, the line and the fix."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router import ConfigError, parse_config
from router.config import DEFAULT_CONFIG_TOML, WarmConsent

ALIAS = '\n[models."qwen3-8b"]\nexo = "mlx-community/Qwen3-8B-4bit"\n'


def test_default_is_ask_and_each_choice_parses():
    assert parse_config(DEFAULT_CONFIG_TOML, "t").models["llama-3.2-3b"].warm_on_exo is WarmConsent.ASK
    for choice in ("ask", "always", "never"):
        config = parse_config(DEFAULT_CONFIG_TOML + ALIAS + f'warm_on_exo = "{choice}"\n', "t")
        assert config.models["qwen3-8b"].warm_on_exo == choice
        assert config.models["qwen3-8b"].ids == {"exo": ("mlx-community/Qwen3-8B-4bit",)}


def test_a_wrong_value_names_the_line_and_the_fix():
    text = DEFAULT_CONFIG_TOML + ALIAS + 'warm_on_exo = "sometimes"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "/home/me/config.toml")
    err = caught.value
    assert err.line == text.splitlines().index('warm_on_exo = "sometimes"') + 1
    assert err.message == ("warm_on_exo in alias 'qwen3-8b' must be one of \"ask\", \"always\", "
                           "\"never\", not 'sometimes'")
    assert err.fix == 'write warm_on_exo = "ask" (or "always", or "never")'
    assert str(err).startswith(f"config error in /home/me/config.toml, line {err.line}: ")


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=12), st.integers(), st.booleans(), st.floats(allow_nan=False),
                 st.lists(st.text(max_size=3), max_size=2)))
def test_any_other_value_is_a_config_error_never_a_crash(value):
    import json

    literal = json.dumps(value) if not isinstance(value, bool) else str(value).lower()
    text = DEFAULT_CONFIG_TOML + ALIAS + f"warm_on_exo = {literal}\n"
    try:
        config = parse_config(text, "t")
    except ConfigError as exc:
        assert exc.line is not None and exc.fix
        return
    assert value in ("ask", "always", "never")
    assert config.models["qwen3-8b"].warm_on_exo == value
