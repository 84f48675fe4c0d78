"""Does not compile."""


def handler(event, context)
    return event
