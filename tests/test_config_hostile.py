"""Any config file gets either a Config or an error naming the file, the line and the fix; never a
crash. Targeted cases from issue 13, then mutations of a valid file (hypothesis)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.cli.main import main
from router.config import DEFAULT_CONFIG_TOML, Config, ConfigError, load_config, parse_config

SOURCE = "/home/u/.config/exo-bridge/config.toml"
FULL = DEFAULT_CONFIG_TOML + """
allow_paid_failover = true

[server]
port = 8741
allowed_origins = ["http://localhost:3000"]
max_connections = 512
header_timeout_s = 10

[notifications]
budget = false
"""


def error_for(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, SOURCE)
    return caught.value


def assert_names_a_line(err: ConfigError, text: str) -> None:
    lines = max(1, len(text.splitlines()))
    assert err.line is not None and 1 <= err.line <= lines, (err.line, str(err))
    assert f"{SOURCE}, line {err.line}" in str(err) and err.fix


@pytest.mark.parametrize(("text", "wanted"), [
    ('"a(b" = 1\n' + DEFAULT_CONFIG_TOML, 'a(b'),
    (DEFAULT_CONFIG_TOML + '\n["x[y"]\nz = 1\n', "x[y"),
    ('providers = [1, 2]\n', "providers"),
    ('providers = ["exo"]\n', "providers"),
    ('providers = []\n', "providers"),
    ("", "providers"),
    ("# nothing here\n\n", "providers"),
    ('[[providers]]\nid = "exo"\nkind = "exo"\n[[providers]]\n', "id"),
    (DEFAULT_CONFIG_TOML + "\n[models]\nx = 1\n", "x"),
    ('server = 5\n' + DEFAULT_CONFIG_TOML, "server"),
    ('server.port = "x"\n' + DEFAULT_CONFIG_TOML, "port"),
    ('server = {port = "x"}\n' + DEFAULT_CONFIG_TOML, "port"),
    (DEFAULT_CONFIG_TOML + '\n[server]\n"p(rt" = 1\n', "p(rt"),
    (DEFAULT_CONFIG_TOML + '\n[notifications]\n"b[" = true\n', "b["),
    (DEFAULT_CONFIG_TOML.replace('[models."llama-3.2-3b"]', '[models."a(b"]') + 'groq = "x"\n', "groq"),
    (DEFAULT_CONFIG_TOML.replace("priority = 1", "priority = 1\nmax_line_bytes = 0"), "max_line_bytes"),
    (DEFAULT_CONFIG_TOML.replace("priority = 1", 'priority = 1\ntotal_timeout_s = "long"'),
     "total_timeout_s"),
    (DEFAULT_CONFIG_TOML.replace("priority = 1", "priority = 1\nidle_timeout_s = 1e9"), "idle_timeout_s"),
    (DEFAULT_CONFIG_TOML.replace("priority = 1", "priority = 1\nmax_connections = 0"), "max_connections"),
    (DEFAULT_CONFIG_TOML + "\n[server]\nmax_connections = -1\n", "max_connections"),
    (DEFAULT_CONFIG_TOML + "\n[server]\nkeepalive_timeout_s = 0\n", "keepalive_timeout_s"),
])
def test_targeted_mistakes_name_the_line_and_the_key(text, wanted):
    err = error_for(text)
    assert_names_a_line(err, text)
    assert wanted in str(err)


@pytest.mark.parametrize("text", [
    "[[providers]]\nid = \"exo\"\nkind = ",  # at end of document
    "[[providers]]\nid = \"exo\"\nkind = \"exo\"\nname = \"x",
    "[[providers]\n",
])
def test_toml_errors_at_the_end_of_the_document_name_the_last_line(text):
    err = error_for(text)
    assert_names_a_line(err, text)
    assert err.line == len(text.splitlines())


def test_a_file_that_is_not_utf8_names_the_line_of_the_first_bad_byte(tmp_path: Path):
    path = tmp_path / "config.toml"
    path.write_bytes(DEFAULT_CONFIG_TOML.encode().replace(b'name = "Exo Local"', b'name = "Exo \xff Local"'))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.line == 4 and "UTF-8" in str(caught.value)


def test_the_cli_reports_a_regex_key_with_exit_2_not_a_crash(tmp_path: Path, capsys):
    path = tmp_path / "config.toml"
    path.write_text('"a(b" = 1\n' + DEFAULT_CONFIG_TOML)
    assert main(["status", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "line 1" in err and "a(b" in err and "unexpected error" not in err


def test_the_new_limits_have_safe_defaults_and_can_be_changed():
    config = parse_config(FULL, SOURCE)
    exo, cloud = config.provider("exo"), config.provider("openrouter")
    assert (exo.total_timeout_s, exo.max_line_bytes, exo.max_response_bytes,
            exo.max_decompressed_bytes) == (600.0, 8 << 20, 32 << 20, 32 << 20)
    assert cloud.max_connections == exo.max_connections == 1024 and exo.max_queued == 1024
    assert (config.server.max_connections, config.server.header_timeout_s) == (512, 10.0)
    assert (config.server.keepalive_timeout_s, config.server.body_timeout_s) == (15.0, 30.0)
    changed = parse_config(FULL.replace("priority = 0", "priority = 0\nmax_line_bytes = 1024\n"
                                        "total_timeout_s = 60\nmax_connections = 8\nmax_queued = 0"), SOURCE)
    exo = changed.provider("exo")
    assert (exo.max_line_bytes, exo.total_timeout_s, exo.max_connections, exo.max_queued) == (1024, 60, 8, 0)


VALUES = st.sampled_from(['"x"', "1", "-1", "0", "1.5", "true", "[]", "[1, 2]", "{}", "{a = 1}",
                          '"http://h"', "inf", "nan", '["a(b"]', "1979-05-27", '"\\u00e9"'])
KEYS = st.sampled_from(["id", "kind", "name", "base_url", "base_urls", "priority", "paid", "enabled",
                        "max_line_bytes", "total_timeout_s", "max_connections", "port", "providers",
                        "models", "server", '"a(b"', "x.y", '"[z"', "notifications", "budget"])


@st.composite
def mutated(draw: st.DrawFn) -> str:
    lines = FULL.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(lines)))
        action = draw(st.sampled_from(["delete", "duplicate", "assign", "header", "garble", "cut"]))
        if action == "delete" and lines:
            del lines[min(at, len(lines) - 1)]
        elif action == "duplicate" and lines:
            lines.insert(at, lines[min(at, len(lines) - 1)])
        elif action == "assign":
            lines.insert(at, f"{draw(KEYS)} = {draw(VALUES)}")
        elif action == "header":
            lines.insert(at, draw(st.sampled_from(["[[providers]]", "[server]", "[models.m]", "[a(b]",
                                                   '["a(b"]', "[notifications]", "[[models]]"])))
        elif action == "garble" and lines:
            line = lines[min(at, len(lines) - 1)]
            cut = draw(st.integers(0, len(line)))
            lines[min(at, len(lines) - 1)] = line[:cut] + draw(st.text(max_size=3)) + line[cut:]
        elif action == "cut":
            lines = lines[:at]
    return "\n".join(lines) + draw(st.sampled_from(["\n", ""]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=mutated())
def test_any_mutation_gives_a_config_or_an_error_with_a_line(text):
    try:
        config = parse_config(text, SOURCE)
    except ConfigError as err:
        assert_names_a_line(err, text)
    else:
        assert isinstance(config, Config)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200))
def test_any_bytes_give_a_config_or_an_error_with_a_line(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "config.toml"
    path.write_bytes(data)
    try:
        load_config(path)
    except ConfigError as err:
        assert err.line is not None and err.line >= 1
