#!/usr/bin/env bash
# Installs the coding agents the real-agent tests drive (issue 26) from npm, at pinned versions,
# into a cache directory (default ~/.cache/exo-bridge/agents, or $EXO_BRIDGE_AGENTS_DIR).
# Both packages ship their native binaries as optional dependencies; nothing runs at install time
# that needs the internet beyond the npm registry. Idempotent: a second run with the same pins
# is a no-op.
set -euo pipefail
CLAUDE_CODE_VERSION=2.1.332
CODEX_VERSION=0.171.0
dir=${EXO_BRIDGE_AGENTS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/exo-bridge/agents}
stamp="$dir/.installed-$CLAUDE_CODE_VERSION-$CODEX_VERSION"
if [ -f "$stamp" ] && [ -x "$dir/node_modules/.bin/claude" ] && [ -x "$dir/node_modules/.bin/codex" ]; then
  echo "$dir"
  exit 0
fi
command -v npm >/dev/null || { echo "install.sh: npm not found" >&2; exit 2; }
mkdir -p "$dir"
npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error \
  "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" "@openai/codex@$CODEX_VERSION" >&2
rm -f "$dir"/.installed-*
touch "$stamp"
echo "$dir"
