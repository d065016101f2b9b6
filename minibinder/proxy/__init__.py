"""The front of `minibinder serve` and the session proxy: every request read once (front,
connection), minibinder's own pages called with it (app_calls), `/user/<id>/…` relayed to its
session over HTTP or as a WebSocket (session_relay, upstream), the route table (routes).

Given a route lookup (session id → host:port), an activity callback and the WSGI app; it imports
nothing of sessions, builds or the store.
"""
