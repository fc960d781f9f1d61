"""The HTTP stack under the router: the chat wire's shape (`wire.py`, no HTTP library), its aiohttp
session (`transport.py`), the httpx client off the hot path (`client.py`), bounded reads
(`body.py`) and the stack one Router loads in a worker thread (`stack.py`).

Imports: errors, config and jsonio only; nothing of routing, money or the desktop.
"""
