"""Where something is in a TOML file's text, for the line a config error names.

Only our own patterns are compiled; names taken from the file (keys, table names) are escaped
or matched as plain text, so no name can break the search.
"""

from __future__ import annotations

import re


class Lines:
    def __init__(self, text: str):
        self.lines = text.splitlines()

    @property
    def last(self) -> int:
        """The last line (1 for an empty file): where a missing table would go."""
        return max(1, len(self.lines))

    def first(self, pattern: str, start: int = 0, end: int | None = None) -> int | None:
        """The first line from ``start`` (0-based) up to ``end`` that matches, 1-based."""
        rx = re.compile(pattern)
        for number, text in enumerate(self.lines[start:end], start=start + 1):
            if rx.search(text):
                return number
        return None

    def key(self, key: str, start: int = 0, end: int | None = None) -> int | None:
        """The line that sets ``key``: bare, quoted, or as the first part of a dotted key."""
        k = re.escape(key)
        return self.first(rf"""^\s*(?:{k}|"{k}"|'{k}')\s*[=.]""", start, end)

    def table(self, name: str) -> int | None:
        """The header of ``[name]``, ``[[name]]`` or a ``[name.sub]`` table."""
        n = re.escape(name)
        return self.first(rf"""^\s*\[\[?\s*(?:{n}|"{n}"|'{n}')\s*[\].]""")

    def mention(self, text: str, start: int = 0) -> int | None:
        for number, line in enumerate(self.lines[start:], start=start + 1):
            if text in line:
                return number
        return None

    def find(self, key: str, start: int = 0, end: int | None = None) -> int:
        """Best effort, never nothing: the key's own line, a table of that name, any line that
        mentions it, else the first line of the section searched."""
        return (self.key(key, start, end) or (self.table(key) if start == 0 else None)
                or self.mention(key, start) or min(start + 1, self.last))

    def array_tables(self, name: str) -> list[int]:
        """0-based lines of every ``[[name]]`` header."""
        n = re.escape(name)
        rx = re.compile(rf"""^\s*\[\[\s*(?:{n}|"{n}"|'{n}')\s*\]\]""")
        return [i for i, text in enumerate(self.lines) if rx.match(text)]
