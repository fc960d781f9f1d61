"""The local OpenAI-compatible endpoint (aiohttp): `server.py` the app, its token and chat
completions; `apis/` the Responses and Messages APIs translated to chat completions;
`connections.py` how many connections it holds and how long a head may take.

Imports: the core's public pieces; never the CLI. Only the CLI (`serve`) and the desktop start it.
"""
