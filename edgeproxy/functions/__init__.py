"""Lambda@Edge functions: loading, isolation (threads, processes, inline), the event JSON,
the validation rule tables for what a function returns, and ``edgeproxy invoke``."""
