"""Rooms and delivery: wire messages, room state, event log, fan-out, bus and media relay.

Knows no Starlette and no SQL; the server feeds it values and persists what it emits.
"""
