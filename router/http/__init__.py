"""The HTTP stack under the router: the chat wire's shape (`wire.py`, no HTTP library), its aiohttp
session (`transport.py`), the httpx client off the hot path (`client.py`), bounded reads
(`body.py`) and the stack one Router loads in a worker thread (`stack.py`).

Imports: errors, jsonio and a provider's settings (router/provider_settings.py) only; nothing of
the config, routing, money or the desktop.
"""
