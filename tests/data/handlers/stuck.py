"""Handlers that never return in time. ENTERED / LEFT let a test see the thread still stuck."""

import os
import threading
import time

ENTERED = threading.Event()
LEFT = threading.Event()


def sleep_60(event, context):
    ENTERED.set()
    time.sleep(60)
    LEFT.set()
    return event["Records"][0]["cf"]["request"]


def spin(event, context):
    """A busy loop; writes its process id to the file named by the X-Pid-File header first."""
    headers = event["Records"][0]["cf"]["request"]["headers"]
    if "x-pid-file" in headers:
        with open(headers["x-pid-file"][0]["value"], "w") as out:
            out.write(str(os.getpid()))
    while True:
        pass
