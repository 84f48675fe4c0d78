"""Stopping user code that runs past its time on a thread of the edge.

A thread cannot be killed, but CPython can raise an exception in it
(``PyThreadState_SetAsyncExc``): it is raised at the thread's next bytecode boundary. That
ends what matters most, a handler spinning in Python code (``while True: pass``), which would
otherwise hold the GIL, and so the event loop, for good. Code blocked inside C (``time.sleep``,
a lock or a socket without timeout) gets it only when it returns there: such a thread costs no
CPU meanwhile, only its memory and the concurrency slot it holds.

``Stoppable`` runs one call so that another thread may stop it, and makes sure the exception
can only ever land in the user's call: one that arrives just after the call returned is caught
and dropped, and none is sent once the thread has left the call.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import Any, Literal

# Two prototypes of one C function (called with the GIL held, as PYFUNCTYPE does): one sends
# an exception, the other passes NULL, which drops one still pending.
_SEND = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.py_object)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)
_DROP = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p)(
    ("PyThreadState_SetAsyncExc", ctypes.pythonapi)
)


class Stopped(BaseException):
    """Raised into a handler (or a module being loaded) at its timeout. A BaseException, so a
    handler's own ``except Exception`` cannot swallow it."""


Outcome = tuple[Any, BaseException | None]


def outcome_of(call: Callable[[], Any]) -> Outcome:
    try:
        return call(), None
    except BaseException as exc:  # handed to whoever waits for the call
        return None, exc


class Stoppable:
    """One call of user code on some thread, which ``stop`` may end from another, before or
    while it runs."""

    __slots__ = ("_lock", "_thread", "_state", "stopped")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread = 0
        self._state: Literal["ready", "inside", "left"] = "ready"
        self.stopped = False  # a stop was asked for (at most one per call)

    def run(self, call: Callable[[], Any]) -> Outcome:
        """``(result, None)`` or ``(None, exception)``; ``Stopped`` when stopped in time.

        Every step is in the retry loop: a stop sent while the call was starting or finishing
        may land anywhere up to ``_leave`` (which drops one still pending); once it landed,
        the call counts as stopped and only ``_leave`` is run again.
        """
        outcome: Outcome | None = None
        while True:
            try:
                if outcome is None:
                    outcome = outcome_of(call) if self._enter() else (None, Stopped())
                self._leave()
                return outcome
            except Stopped as stop:
                if outcome is None:
                    outcome = (None, stop)

    def stop(self) -> bool:
        """Stop the call: it never starts, or ``Stopped`` is raised in its thread; False when
        it had already returned."""
        with self._lock:
            if self._state == "left" or self.stopped:
                return False
            self.stopped = True
            if self._state == "inside":
                _SEND(self._thread, Stopped)
            return True

    def _enter(self) -> bool:
        with self._lock:
            self._thread = threading.get_ident()
            self._state = "left" if self.stopped else "inside"
            return self._state == "inside"

    def _leave(self) -> None:
        with self._lock:
            if self._state == "inside":
                _DROP(self._thread, None)  # first: a stop still pending is dropped
            self._state = "left"


def run_in_thread(call: Callable[[], Any], timeout: float, name: str) -> Outcome | None:
    """``call()`` on a daemon thread of its own, waited for at most ``timeout`` seconds: its
    outcome, or None when it ran over (it is then stopped, as far as ``Stoppable`` can)."""
    stoppable = Stoppable()
    box: list[Outcome] = []
    thread = threading.Thread(
        target=lambda: box.append(stoppable.run(call)), name=name, daemon=True
    )
    thread.start()
    thread.join(timeout)
    if box:
        return box[0]
    stoppable.stop()
    return None
