"""A function's spawner: one small process per Python function container that has the runtime
already imported and forks a fresh runtime process for each cold start.

Starting a Python runtime by ``exec`` costs about 0.2 s of CPU (the interpreter and the
runtime's imports); a fork of a process that has done it once costs about a millisecond. A
function that times out again and again (``while True: pass``) has its runtime replaced at
every call, so the spawner is what keeps its restarts from taking the edge's CPU. The
spawner runs in the function's container (its folder, Lambda's environment, a lower CPU
priority than the edge) and never loads the function's code: each forked runtime process
loads it itself, so every cold start runs the function's init afresh, as on Lambda.

The edge and the spawner speak over a Unix ``SOCK_SEQPACKET`` pair: the edge sends one
request per runtime (JSON: the handler spec and memory limit) with the two pipe ends the
runtime will use as its channel (``socket.send_fds``); the spawner forks, answers the child's
process id (4 bytes), and closes its copies of the pipes. The child is not the edge's: the
edge kills it through a pidfd opened while it is known to be alive, and sees it end when the
pidfd becomes readable. The spawner reaps its children (SIGCHLD ignored) and dies with the
edge; its children die with it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
import sys
from typing import Any

from edgeproxy.functions.output import runtime_stderr

PID = struct.Struct(">I")
_REQUEST_MAX = 64 * 1024


class RuntimeExit:
    """A forked runtime process as the edge sees it: killed and awaited through a pidfd
    (the edge is not its parent, so it cannot wait for it)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        loop = asyncio.get_running_loop()
        self._ended: asyncio.Future[None] = loop.create_future()
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # already gone (its spawner reaped it): nothing to kill
            self._pidfd = None
            self._ended.set_result(None)
            return
        loop.add_reader(self._pidfd, self._on_end)

    def _on_end(self) -> None:
        self._close()
        if not self._ended.done():
            self._ended.set_result(None)

    def _close(self) -> None:
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None

    @property
    def ended(self) -> bool:
        return self._ended.done()

    def kill(self) -> None:
        if self._pidfd is not None:
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def wait(self) -> None:
        await self._ended


class Spawner:
    """The edge's side of one container's spawner process, started on first use."""

    def __init__(self, environment: dict[str, str], cwd: str) -> None:
        self._environment = environment
        self._cwd = cwd
        self._process: asyncio.subprocess.Process | None = None
        self._control: socket.socket | None = None
        self._lock = asyncio.Lock()  # one request at a time: replies come in order

    async def spawn(self, spec: str, memory_limit_mb: int, stdin: int, stdout: int) -> int:
        """Fork a runtime process for ``spec`` whose channel is the pipe ends ``stdin`` and
        ``stdout`` (the caller closes its copies); its process id. OSError when the spawner
        cannot be reached, even after one restart."""
        request = json.dumps({"spec": spec, "memory_limit_mb": memory_limit_mb}).encode()
        async with self._lock:
            for attempt in (1, 2):
                try:
                    control = await self._started()
                    socket.send_fds(control, [request], [stdin, stdout])
                    reply = await asyncio.get_running_loop().sock_recv(control, PID.size)
                    if len(reply) == PID.size:
                        return int(PID.unpack(reply)[0])
                    raise ConnectionError("the spawner closed its socket")
                except OSError:
                    await self.close()
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    async def _started(self) -> socket.socket:
        if self._control is not None:
            return self._control
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-P",  # the function's folder is not on the spawner's own path
                "-m",
                "edgeproxy.functions.spawner",
                str(theirs.fileno()),
                stdin=asyncio.subprocess.DEVNULL,
                stderr=runtime_stderr(),  # what the runtimes it forks print goes there too
                env=self._environment,
                cwd=self._cwd,
                pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        from edgeproxy.functions.processes import below_the_edge

        below_the_edge(self._process.pid)  # its forks inherit the lower priority
        ours.setblocking(False)
        self._control = ours
        return ours

    async def close(self) -> None:
        control, self._control = self._control, None
        process, self._process = self._process, None
        if control is not None:
            control.close()  # an idle spawner reads the end of its socket and exits
        if process is not None:
            if process.returncode is None:
                process.kill()
            await process.wait()


# --- inside the spawner process --------------------------------------------------------------


def _forked_runtime(request: dict[str, Any], fds: list[int], control: socket.socket) -> None:
    """The child: the pipes become its stdin/stdout, then it is a runtime process."""
    from edgeproxy.functions.processes import worker_main

    try:
        control.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the function's own subprocesses
        os.dup2(fds[0], 0)
        os.dup2(fds[1], 1)
        for fd in fds:
            os.close(fd)
        worker_main(str(request["spec"]), int(request["memory_limit_mb"]))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def spawner_main(control_fd: int) -> None:
    """Fork a runtime process per request until the edge closes the socket."""
    from edgeproxy.functions.processes import die_with_the_edge

    die_with_the_edge()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    control = socket.socket(fileno=control_fd)
    while True:
        try:
            message, fds, _flags, _address = socket.recv_fds(control, _REQUEST_MAX, 2)
        except (ConnectionError, InterruptedError):
            return
        if not message:
            return
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            return
        pid = os.fork()
        if pid == 0:
            _forked_runtime(json.loads(message), fds, control)
        for fd in fds:
            os.close(fd)
        control.sendall(PID.pack(pid))


if __name__ == "__main__":
    # Through the package's module, not __main__: one copy of its functions in the spawner.
    import edgeproxy.functions.processes  # noqa: F401  (imported once, before any fork)
    from edgeproxy.functions.spawner import spawner_main as _main

    try:
        _main(int(sys.argv[1]))
    except KeyboardInterrupt:
        pass
