"""Toward the origin: the client, its retry and failure rules, what is forwarded, and the
built-in demo origin."""
