"""The local exo cluster as the router sees it: its state (`cluster.py`), watched over time
(`watch.py`), told to listeners (`events.py`), in words (`view.py`), controlled (`ops.py`),
warmed and fixed (`companion.py`), found on this machine (`discover.py`).

The wire format is the exo adapter's (router/providers/exo.py); nothing here parses exo's JSON.
Imports: the core's vocabulary and the providers; never the endpoint or the CLI.
"""
