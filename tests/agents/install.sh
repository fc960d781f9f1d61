#!/usr/bin/env bash
# Installs the coding agents the real-agent tests drive (issue 26) from npm, at pinned versions,
# into a cache directory (default ~/.cache/exo-bridge/agents, or $EXO_BRIDGE_AGENTS_DIR).
# Both packages ship their native binaries as optional dependencies; nothing runs at install time
# that needs the internet beyond the npm registry. Idempotent: a second run with the same pins
# is a no-op.
set -euo pipefail
CLAUDE_CODE_VERSION=2.1.332
CODEX_VERSION=0.171.0
# The AI SDK (Vercel's `ai`) with its OpenAI and Anthropic providers, for tests/agents/ai_sdk.mjs.
AI_SDK="ai@7.0.185 @ai-sdk/openai@4.0.126 @ai-sdk/anthropic@4.0.112 zod@4.6.7"
dir=${EXO_BRIDGE_AGENTS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/exo-bridge/agents}
stamp="$dir/.installed-$CLAUDE_CODE_VERSION-$CODEX_VERSION-$(echo "$AI_SDK" | md5sum | cut -c1-8)"
if [ -f "$stamp" ] && [ -x "$dir/node_modules/.bin/claude" ] && [ -x "$dir/node_modules/.bin/codex" ]; then
  echo "$dir"
  exit 0
fi
command -v npm >/dev/null || { echo "install.sh: npm not found" >&2; exit 2; }
mkdir -p "$dir"
npm install --prefix "$dir" --no-audit --no-fund --loglevel=error \
  "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" "@openai/codex@$CODEX_VERSION" $AI_SDK >&2
rm -f "$dir"/.installed-*
touch "$stamp"
echo "$dir"
