"""Never returns: a CPU-bound loop."""


def handler(event, context):
    while True:
        pass
