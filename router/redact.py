"""Key-shaped text masked before it is shown, logged or recorded."""

from __future__ import annotations

import re

# OpenRouter / OpenAI-style keys, Hugging Face tokens, and whatever follows "Bearer".
_SECRET_SHAPES = re.compile(
    r"(?i)(sk-or-v1-[A-Za-z0-9_-]{8,}|sk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{16,}"
    r"|(?<=bearer )[A-Za-z0-9._~+/=-]{8,})")


def redact(text: str) -> str:
    return _SECRET_SHAPES.sub("••••", text)
