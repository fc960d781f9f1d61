"""Keys and tokens out of any text a provider sent, before it is shown, logged, recorded or
returned.

Applied where provider text enters (router.providers.openai_compat: error bodies and mid-stream
error chunks). Two nets: every secret this process holds (each :class:`router.keys.Secret`
registers its value here, exact match), and anything shaped like a key or a bearer credential.
"""

from __future__ import annotations

import re

MASK = "[redacted]"
_MIN_KNOWN = 8  # shorter values would mask ordinary words
_SHAPES = re.compile(
    r"(?i)\bbearer\s+[^\s\"',;}\]]+"  # Authorization: Bearer …
    r"|\bauthorization[\"']?\s*[:=]\s*[\"']?(?!bearer\b)(?:basic\s+)?[^\s\"',;}\]]+"
    r"|\bsk-[A-Za-z0-9_\-]{8,}"  # OpenAI / OpenRouter (sk-or-v1-…) style keys
    r"|\bhf_[A-Za-z0-9]{8,}"  # Hugging Face tokens
    r"|(?:(?<=[\"'\s(])|^)(?:api[_-]?key|access[_-]?token|token|secret|password)[\"']?\s*[:=]\s*[\"']?"
    r"[^\s\"',;}\]]{6,}")

_known: set[str] = set()  # the secrets this process holds (keys, the endpoint token)


def remember(value: str) -> None:
    """Mask ``value`` wherever it appears in provider text from now on."""
    if len(value) >= _MIN_KNOWN:
        _known.add(value)


def redact(text: str) -> str:
    for value in _known:
        if value in text:
            text = text.replace(value, MASK)
    return _SHAPES.sub(_mask_shape, text)


def _mask_shape(match: re.Match[str]) -> str:
    """Keep what names the secret (``Bearer ``, ``api_key=``), mask the secret."""
    found = match.group(0)
    if found[:3].lower() in ("sk-", "hf_"):
        return MASK
    head = _HEAD.match(found)
    return (head.group(0) if head else "") + MASK


_HEAD = re.compile(r"(?i)bearer\s+|authorization[\"']?\s*[:=]\s*[\"']?(?:basic\s+)?"
                   r"|[a-z_\-]+[\"']?\s*[:=]\s*[\"']?")


def redact_logs() -> None:
    """From now on every log record of this process is redacted as it is made (its message and
    its traceback), so no handler — a file, a terminal, a test's capture — ever sees a key."""
    import logging
    import traceback

    make = logging.getLogRecordFactory()
    if getattr(make, "redacts", False):
        return

    def redacted(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make(*args, **kwargs)
        record.msg, record.args = redact(record.getMessage()), ()
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip())
        return record

    redacted.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacted)
