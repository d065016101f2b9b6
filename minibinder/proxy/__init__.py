"""The session proxy: the route table and the HTTP and WebSocket relays for `/user/<id>/…`.

Given a route lookup (session id → host:port), an activity callback and an optional helper app;
it imports nothing of sessions, builds or the store.
"""
