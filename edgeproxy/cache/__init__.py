"""The cache: the object store and collapsing, the cache key, TTL rules, Vary, conditional
requests, ranges, compression and HTTP dates."""
