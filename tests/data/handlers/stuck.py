"""Handlers that never return in time. ENTERED / LEFT let a test see the thread still stuck;
RELEASE ends ``blocked`` calls (a test sets it when done, so their threads end)."""

import os
import threading
import time

ENTERED = threading.Event()
LEFT = threading.Event()
RELEASE = threading.Event()


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


def sleep_forever(event, context):
    """Blocked in C for good: its thread stays, asleep, until the process ends."""
    time.sleep(10**6)


def blocked(event, context):
    """Waits on an event nobody sets while the test runs: blocked in C, as on a lock or a
    socket without timeout."""
    RELEASE.wait()


def busy(event, context):
    while True:
        pass
