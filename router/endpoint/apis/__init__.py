"""The caller-facing API shapes besides chat completions: OpenAI's Responses API and Anthropic's
Messages API, translated to and from chat completions so that every request takes the Router's
one path (failover, budgets, deadlines, the ledger). Nothing here routes or retries."""
