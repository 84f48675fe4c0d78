"""A handler whose helper raises: the logged traceback shows these two frames."""


def _parse(value):
    raise ValueError(f"cannot parse {value!r}")


def handler(event, context):
    return _parse(event["Records"][0]["cf"]["request"]["uri"])


async def async_handler(event, context):
    return _parse(event["Records"][0]["cf"]["request"]["uri"])


def raises_timeout_error(event, context):
    # The user's own TimeoutError is an execution error, not a Lambda timeout.
    raise TimeoutError("upstream api timed out")
