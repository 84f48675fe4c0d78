"""``make bench``: edgeproxy, nginx proxy_cache and Varnish measured side by side on loopback.

Run with ``python -m bench`` (see ``python -m bench --help``); docs/performance.md explains
the method and keeps the latest table.
"""
