"""Config loading: defaults, the contract's keys, and errors that name file, line and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import DEFAULT_CONFIG_TOML, ConfigError, load_config, parse_config


def test_missing_default_file_means_builtin_defaults():
    config = load_config()
    assert [p.id for p in config.providers] == ["exo", "openrouter", "huggingface"]
    exo = config.provider("exo")
    assert exo.base_urls == ("http://localhost:52415", "http://localhost:8000")
    assert not exo.paid and config.provider("openrouter").paid
    assert config.provider("openrouter").daily_request_limit == 1000
    assert config.provider("huggingface").daily_token_limit == 50000
    assert config.default_model == "llama-3.2-3b"
    assert config.models["llama-3.2-3b"].ids["exo"] == (
        "mlx-community/Llama-3.2-3B-Instruct-4bit", "llama-3.2-3b")


def test_env_variable_points_at_the_file(tmp_path: Path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text(DEFAULT_CONFIG_TOML.replace("priority = 2", "priority = -1"))
    monkeypatch.setenv("EXO_BRIDGE_CONFIG", str(path))
    config = load_config()
    assert config.providers[0].id == "huggingface"  # sorted by priority
    assert config.source == str(path)


def test_explicit_missing_file_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def error_for(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "/home/u/.config/exo-bridge/config.toml")
    return caught.value


def test_invalid_toml_names_the_line():
    err = error_for('[[providers]]\nid = "exo"\nkind = exo\n')
    assert err.line == 3
    assert "config.toml, line 3" in str(err) and "fix:" in str(err)


def test_unknown_provider_key_names_the_line():
    text = DEFAULT_CONFIG_TOML.replace('name = "OpenRouter"', 'name = "OpenRouter"\nprioritty = 3')
    err = error_for(text)
    assert "prioritty" in err.message
    assert text.splitlines()[err.line - 1].startswith("prioritty")


def test_duplicate_ids():
    text = DEFAULT_CONFIG_TOML.replace('id = "huggingface"', 'id = "openrouter"')
    err = error_for(text)
    assert "duplicate provider id 'openrouter'" in err.message
    assert text.splitlines()[err.line - 1] == 'id = "openrouter"'
    assert err.line > 20  # the second one


def test_negative_limit():
    text = DEFAULT_CONFIG_TOML.replace("daily_request_limit = 100\n", "daily_request_limit = -5\n")
    err = error_for(text)
    assert "must not be negative" in err.message
    assert text.splitlines()[err.line - 1] == "daily_request_limit = -5"


def test_non_numeric_limit():
    err = error_for(DEFAULT_CONFIG_TOML.replace("daily_token_limit = 50000", 'daily_token_limit = "lots"'))
    assert "whole number" in err.message


def test_alias_naming_unknown_provider():
    text = DEFAULT_CONFIG_TOML + 'groq = "llama-3.2-3b"\n'
    err = error_for(text)
    assert "unknown provider 'groq'" in err.message
    assert text.splitlines()[err.line - 1].startswith("groq")


@pytest.mark.parametrize(("snippet", "expected"), [
    ('kind = "exo"', 'kind = "ollama"'),
    ('id = "exo"', 'id = "Exo Local"'),
    ('base_url = "https://openrouter.ai/api/v1"', 'base_url = "openrouter.ai"'),
])
def test_bad_values(snippet, expected):
    err = error_for(DEFAULT_CONFIG_TOML.replace(snippet, expected, 1))
    assert err.line is not None and err.fix


def test_unknown_top_level_key():
    err = error_for("colour = 'red'\n" + DEFAULT_CONFIG_TOML)
    assert err.line == 1


def test_server_section_and_alias_consent():
    config = parse_config(DEFAULT_CONFIG_TOML + 'allow_paid_failover = false\n\n[server]\nport = 9000\n'
                          'allowed_origins = ["http://localhost:3000"]\n', "t")
    assert config.server.port == 9000
    assert config.server.allowed_origins == ("http://localhost:3000",)
    assert config.models["llama-3.2-3b"].allow_paid_failover is False


def test_notification_settings():
    config = parse_config(DEFAULT_CONFIG_TOML + "\n[notifications]\nbudget = false\n", "t")
    assert config.notifications == {"failover": True, "failback": True, "invalid-key": True,
                                    "budget": False, "cost-anomaly": True, "crash": True,
                                    "ledger": True, "warm": True, "cluster": True,
                                    "credit": True}
    err = error_for(DEFAULT_CONFIG_TOML + "\n[notifications]\nbudgets = false\n")
    assert "budgets" in err.message and err.line is not None


def test_known_kinds_default_their_base_url():
    config = parse_config('[[providers]]\nid = "exo"\nkind = "exo"\n\n'
                          '[[providers]]\nid = "or"\nkind = "openrouter"\n\n'
                          '[[providers]]\nid = "hf"\nkind = "huggingface"\n', "c.toml")
    assert config.provider("exo").base_urls == ("http://localhost:52415",)
    assert config.provider("or").base_url == "https://openrouter.ai/api/v1"
    assert config.provider("hf").base_url == "https://router.huggingface.co/v1"


def test_openai_compatible_server_needs_its_base_url():
    text = '[[providers]]\nid = "exo"\nkind = "exo"\n\n[[providers]]\nid = "lab"\nkind = "openai"\n'
    err = error_for(text)
    assert "base_url is missing" in err.message and 'base_url = "https://host/v1"' in err.fix
    assert text.splitlines()[err.line - 1] == 'kind = "openai"'
