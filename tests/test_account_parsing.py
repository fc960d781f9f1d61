"""What is read from outside for the accounts, hostile input included: the config keys
(free_only, credit_floor_usd), OpenRouter's key call and limit errors, the reconciliation file."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.accounts import reconcile
from router.accounts.reconcile import Reconciliation
from router.config import DEFAULT_CONFIG_TOML, ConfigError, parse_config
from router.errors import LimitCause, Outcome
from router.providers import adapter_for
from router.providers.account import AccountReport
from router.providers.openrouter_account import limit_cause, limit_wait, next_reset, read_key

SOURCE = "/home/u/.config/exo-bridge/config.toml"
FREE_ALIAS = '\n[models."free-llama"]\nfree_only = true\nopenrouter = "{}"\n'


def error_for(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, SOURCE)
    return caught.value


# -- config ---------------------------------------------------------------------------------
def test_free_only_alias_and_credit_floor_parse():
    text = DEFAULT_CONFIG_TOML.replace('api_key_env = "OPENROUTER_API_KEY"',
                                       'api_key_env = "OPENROUTER_API_KEY"\ncredit_floor_usd = 2.5')
    config = parse_config(text + FREE_ALIAS.format("meta-llama/llama-3.2-3b-instruct:free")
                          + 'exo = "llama-3.2-3b"\n', SOURCE)
    assert config.models["free-llama"].free_only and not config.models["llama-3.2-3b"].free_only
    assert config.provider("openrouter").credit_floor_usd == 2.5
    assert config.provider("huggingface").credit_floor_usd is None


def test_a_free_only_alias_naming_a_paid_model_names_the_line_and_the_free_variant():
    text = DEFAULT_CONFIG_TOML + FREE_ALIAS.format("meta-llama/llama-3.2-3b-instruct")
    err = error_for(text)
    assert err.line == len(text.splitlines())  # the alias's openrouter line, not the default's
    assert "free_only" in err.message and "would charge" in err.message
    assert "meta-llama/llama-3.2-3b-instruct:free" in err.fix


def test_a_free_only_alias_naming_a_provider_that_always_charges():
    text = DEFAULT_CONFIG_TOML + FREE_ALIAS.format("x:free") + 'huggingface = "m/x"\n'
    err = error_for(text)
    assert err.line == len(text.splitlines())
    assert "remove huggingface from this alias" in err.fix


def test_free_only_must_be_true_or_false():
    text = DEFAULT_CONFIG_TOML + '\n[models."a"]\nexo = "x"\nfree_only = "yes"\n'
    err = error_for(text)
    assert err.line == len(text.splitlines()) and "true or false" in err.message


@pytest.mark.parametrize(("snippet", "wanted"), [
    ("credit_floor_usd = -1", "must not be negative"),
    ('credit_floor_usd = "5"', "must be a number"),
])
def test_bad_credit_floor(snippet, wanted):
    text = DEFAULT_CONFIG_TOML.replace("priority = 1", f"priority = 1\n{snippet}")
    err = error_for(text)
    assert wanted in err.message and err.line == text.splitlines().index(snippet) + 1


def test_a_credit_floor_on_a_provider_whose_key_call_shows_no_credit():
    text = DEFAULT_CONFIG_TOML.replace("priority = 2", "priority = 2\ncredit_floor_usd = 1")
    err = error_for(text)
    assert "kind 'huggingface' does not" in err.message and "openrouter" in err.fix
    assert err.line == text.splitlines().index("credit_floor_usd = 1") + 1


# -- OpenRouter's key call ------------------------------------------------------------------
NOW = datetime(2026, 11, 18, 15, 30, tzinfo=UTC)  # a Wednesday


def test_every_key_field_is_read():
    data = {"data": {"label": "sk-or-v1-a...", "limit": 100, "limit_reset": "monthly",
                     "limit_remaining": 74.5, "include_byok_in_limit": False, "usage": 25.5,
                     "usage_daily": 1.5, "usage_weekly": 5.5, "usage_monthly": 25.5,
                     "is_free_tier": False,
                     "free_model_daily_requests": {"used": 45, "limit": 50, "remaining": 5},
                     "expires_at": "2027-12-31T23:59:59Z"}}
    report = read_key(data, NOW)
    assert report is not None
    assert (report.limit_usd, report.remaining_usd, report.limit_reset) == (100.0, 74.5, "monthly")
    assert report.limit_resets_at == datetime(2026, 12, 1, tzinfo=UTC)
    assert (report.usage_usd, report.usage_daily_usd, report.usage_weekly_usd,
            report.usage_monthly_usd) == (25.5, 1.5, 5.5, 25.5)
    assert report.free_tier is False and report.free_requests is not None
    assert (report.free_requests.used, report.free_requests.remaining) == (45, 5)
    assert report.expires_at == datetime(2027, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(("period", "expected"), [
    ("daily", datetime(2026, 11, 19, tzinfo=UTC)), ("weekly", datetime(2026, 11, 23, tzinfo=UTC)),
    ("monthly", datetime(2026, 12, 1, tzinfo=UTC))])
def test_reset_times(period, expected):
    assert next_reset(period, NOW) == expected
    assert next_reset("monthly", datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == \
        datetime(2027, 1, 1, tzinfo=UTC)


def test_absurd_key_figures_are_dropped_not_trusted():
    report = read_key({"data": {"limit": float("nan"), "limit_remaining": "12", "usage": -3,
                                "usage_daily": 1e30, "is_free_tier": "no", "limit_reset": "hourly",
                                "free_model_daily_requests": {"used": -1, "limit": 50},
                                "expires_at": "soon"}}, NOW)
    assert report == AccountReport()


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=6), max_leaves=30)
KEY_FIELDS = st.fixed_dictionaries({}, optional={k: JSON for k in (
    "limit", "limit_remaining", "limit_reset", "usage", "usage_daily", "usage_weekly",
    "usage_monthly", "is_free_tier", "free_model_daily_requests", "expires_at")})


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON, st.builds(lambda d: {"data": d}, KEY_FIELDS)))
def test_any_key_answer_reads_to_a_sane_report_or_none(data):
    report = read_key(data, NOW)
    if report is None:
        return
    for value in (report.limit_usd, report.usage_usd, report.usage_daily_usd):
        assert value is None or (0 <= value <= 1e7)
    if report.free_requests is not None:
        assert report.free_requests.remaining >= 0 and report.free_requests.limit >= 0
    json.dumps(report.as_json(), allow_nan=False)


# -- OpenRouter's limit errors --------------------------------------------------------------
def _body(status: int, **metadata: object) -> bytes:
    return json.dumps({"error": {"code": status, "message": "refused",
                                 "metadata": metadata}}).encode()


@pytest.mark.parametrize(("status", "metadata", "headers", "cause", "outcome", "wait"), [
    (402, {"error_type": "in_flight_budget_exhausted",
           "limit_source": "openrouter_in_flight_budget"}, {"retry-after": "3"},
     LimitCause.IN_FLIGHT, Outcome.OUT_OF_CREDITS, 3.0),
    (402, {"error_type": "payment_required", "limit_source": "openrouter_key_limit",
           "resets_at": "2099-01-01T00:00:00Z"}, {}, LimitCause.KEY_LIMIT, Outcome.OUT_OF_CREDITS,
     "future"),
    (402, {"error_type": "payment_required", "limit_source": "openrouter_credits"}, {},
     LimitCause.CREDITS, Outcome.OUT_OF_CREDITS, None),
    (402, {"error_type": "weight_exceeds_budget", "limit_source": "openrouter_credits"}, {},
     LimitCause.REQUEST_COST, Outcome.OUT_OF_CREDITS, None),
    (402, {}, {}, LimitCause.CREDITS, Outcome.OUT_OF_CREDITS, None),  # a bare 402
    (403, {"error_type": "permission_denied", "limit_source": "openrouter_guardrail_budget"}, {},
     LimitCause.KEY_LIMIT, Outcome.OUT_OF_CREDITS, None),
    (403, {"error_type": "permission_denied"}, {}, None, Outcome.BAD_REQUEST, None),  # moderation
])
def test_openrouter_names_each_cause(status, metadata, headers, cause, outcome, wait):
    failure = adapter_for("openrouter").classify(status, _body(status, **metadata), headers)
    assert (failure.limit, failure.outcome) == (cause, outcome)
    if wait == "future":
        assert failure.retry_after_s is not None and failure.retry_after_s > 86400
    else:
        assert failure.retry_after_s == wait


def test_the_free_model_day_quota_is_its_own_cause():
    body = _body(429, error_type="rate_limit_exceeded")
    body = body.replace(b"refused", b"Rate limit exceeded: free-models-per-day")
    reset = int((datetime.now(UTC).timestamp() + 3600) * 1000)
    failure = adapter_for("openrouter").classify(429, body, {"x-ratelimit-reset": str(reset)})
    assert (failure.limit, failure.outcome) == (LimitCause.FREE_QUOTA, Outcome.RATE_LIMITED)
    assert failure.retry_after_s is not None and 3500 < failure.retry_after_s <= 3600


def test_hugging_face_402_is_out_of_credits_by_its_status():
    failure = adapter_for("huggingface").classify(402, b'{"error": "anything at all"}', {})
    assert (failure.limit, failure.outcome) == (LimitCause.CREDITS, Outcome.OUT_OF_CREDITS)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([402, 403, 429]), st.dictionaries(st.sampled_from(
    ["error_type", "limit_source", "resets_at", "limit_reset"]), JSON),
    st.dictionaries(st.sampled_from(["retry-after", "x-ratelimit-reset"]), st.text(max_size=30)))
def test_any_limit_error_classifies_without_raising(status, metadata, headers):
    cause = limit_cause(status, metadata, "x")
    if cause is not None:
        wait = limit_wait(cause, headers, metadata, NOW)
        assert wait is None or wait >= 0
    adapter_for("openrouter").classify(status, json.dumps({"error": {"metadata": metadata}},
                                                          default=str).encode(), headers)


# -- the reconciliation file ----------------------------------------------------------------
def _check(day: str, recorded: float, billed: float, hour: int = 12) -> Reconciliation:
    return Reconciliation(day, "openrouter", recorded, billed,
                          datetime.fromisoformat(f"{day}T{hour:02d}:00:00+00:00"))


def test_drift_needs_more_than_five_percent_and_more_than_a_cent():
    assert not _check("2026-11-18", 0.104, 0.100).drifted  # 4%
    assert not _check("2026-11-18", 0.0109, 0.0100).drifted  # 9%, under a cent
    assert _check("2026-11-18", 0.12, 0.10).drifted
    assert _check("2026-11-18", 0.0, 0.02).drifted
    assert _check("2026-11-18", 0.12, 0.10).text() == \
        "recorded $0.1200, billed $0.1000 (drift +$0.0200, +20.0%)"


def test_the_latest_check_of_each_day_is_kept_and_bad_lines_are_skipped(tmp_path: Path):
    assert reconcile.append(tmp_path, _check("2026-11-17", 1.0, 1.0))
    assert reconcile.append(tmp_path, _check("2026-11-18", 1.0, 2.0, hour=9))
    with open(tmp_path / reconcile.FILE, "ab") as handle:
        handle.write(b'{"day": "2026-11-18", "provider": "openrouter", "recorded_usd": NaN}\n'
                     b"not json\n[1, 2]\n" + b'{"day": "2026-13-01"}\n' + b'{"torn": ')
    assert reconcile.append(tmp_path, _check("2026-11-18", 2.0, 2.0, hour=10))
    checks = reconcile.load(tmp_path, date(2026, 11, 1), date(2026, 11, 30))
    assert [(c.day, c.recorded_usd, c.drifted) for c in checks] == [
        ("2026-11-17", 1.0, False), ("2026-11-18", 2.0, False)]
    assert (tmp_path / reconcile.FILE).stat().st_mode & 0o777 == 0o600
    assert reconcile.load(tmp_path, date(2026, 11, 18), date(2026, 11, 18))[0].day == "2026-11-18"


def test_a_file_that_cannot_be_written_costs_only_the_record(tmp_path: Path):
    (tmp_path / reconcile.FILE).mkdir()  # a directory where the file belongs (EISDIR)
    assert not reconcile.append(tmp_path, _check("2026-11-18", 1.0, 1.0))
    (tmp_path / "file").write_text("x")  # a file where the directory belongs (ENOTDIR)
    assert not reconcile.append(tmp_path / "file" / "below", _check("2026-11-18", 1.0, 1.0))
    assert reconcile.load(tmp_path / "missing", date(2026, 1, 1), date(2026, 12, 31)) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200) | JSON.map(lambda v: json.dumps(v).encode()), max_size=8))
def test_any_file_content_loads_without_raising(tmp_path_factory, lines):
    directory = tmp_path_factory.mktemp("rec")
    (directory / reconcile.FILE).write_bytes(b"\n".join(lines))
    for check in reconcile.load(directory, date(1, 1, 1), date(9999, 12, 31)):
        assert check.recorded_usd >= 0 and check.billed_usd >= 0
