"""Stopping user code on a thread: a spinning call ends at once, a blocked one when it
returns, one not yet started never starts, and a stop can never land outside the call."""

from __future__ import annotations

import random
import threading
import time

from edgeproxy.functions.stopping import Stoppable, Stopped, run_in_thread


def count(n: int) -> None:
    for _ in range(n):
        pass


def spin_for(seconds: float) -> None:
    """Python code for about ``seconds`` whatever the machine's speed (a stop lands in it)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def spin() -> None:
    while True:
        pass


def test_a_spinning_call_is_stopped() -> None:
    started = time.monotonic()
    assert run_in_thread(spin, 0.2, "spin") is None  # ran over: stopped
    for _ in range(500):
        if not [t for t in threading.enumerate() if t.name == "spin"]:
            break
        time.sleep(0.01)
    assert not [t for t in threading.enumerate() if t.name == "spin"]
    assert time.monotonic() - started < 5


def test_a_blocked_call_stops_when_it_returns_to_python() -> None:
    release = threading.Event()
    stoppable = Stoppable()
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(stoppable.run(release.wait)))
    thread.start()
    time.sleep(0.05)
    assert stoppable.stop()
    time.sleep(0.05)
    assert thread.is_alive()  # inside C: it cannot be interrupted there
    release.set()
    thread.join(5)
    result, error = outcome[0]  # type: ignore[misc]
    assert result is None and isinstance(error, Stopped)


def test_stopped_before_it_starts_it_never_runs() -> None:
    stoppable = Stoppable()
    ran: list[bool] = []
    assert stoppable.stop()
    result, error = stoppable.run(lambda: ran.append(True))
    assert ran == [] and isinstance(error, Stopped)


def test_a_stop_after_the_call_returned_is_dropped() -> None:
    stoppable = Stoppable()
    assert stoppable.run(lambda: 42) == (42, None)
    assert not stoppable.stop()


def test_a_stop_racing_the_end_of_a_call_never_lands_outside_it() -> None:
    """Stops sent at random moments around short calls, some while the call runs, some as
    it returns, some after: the thread always finishes its run with one outcome, and nothing
    is ever raised in its own code afterwards."""
    random.seed(7)
    stopped = 0
    for _ in range(150):
        stoppable = Stoppable()
        after: list[int] = []

        def work(s: Stoppable = stoppable, done: list[int] = after) -> None:
            result, error = s.run(lambda: spin_for(random.random() * 0.02))
            done.append(isinstance(error, Stopped))
            for n in range(20_000):  # Python code after the run: a stray stop would land here
                done.append(n)

        thread = threading.Thread(target=work)
        thread.start()
        time.sleep(random.random() * 0.02)  # the GIL switches every 5 ms: both sides race
        stoppable.stop()
        thread.join(5)
        assert not thread.is_alive() and len(after) == 20_001
        stopped += after[0]
    assert 0 < stopped < 150  # both sides of the race were run
