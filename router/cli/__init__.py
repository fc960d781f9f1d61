"""The headless commands: `exo-bridge ask | status | usage | keys | exo | serve | token`
(`main.py` parses and dispatches; `accounts.py`, `exo.py`, `keys.py` their parts).

Imports: anything in router/; nothing in router/ imports it (only `router/__main__.py` and the
desktop's entry point).
"""

# The subcommands (router/cli/main.py's parser has exactly these; desktop/main.py sends them here).
COMMANDS = ("ask", "status", "usage", "keys", "exo", "serve", "token")
