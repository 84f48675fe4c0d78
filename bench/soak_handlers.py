"""The handler the soak puts on /lambda-error/*: a viewer-request that always raises, so the
edge answers 503 (LambdaExecutionError) while the other paths keep their answers."""


def raises(event, context):
    raise RuntimeError("soak: a handler error on purpose")
