"""forumlive's server: HTTP API, pages, accounts, storage, reports and the command line.

The only package that knows HTTP/ASGI. Imports point one way: server -> realtime -> captioning.
"""

__version__ = "0.1.0"
