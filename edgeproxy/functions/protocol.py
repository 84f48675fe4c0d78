"""The message protocol between the edge and a runtime process, whatever its language.

Each message is one frame: a 4-byte big-endian length, then that many bytes of UTF-8 JSON
(JSON, not pickle, so that a Node.js runtime speaks it too; node_runtime.mjs is the other
implementation). The messages, in order:

* runtime → edge, once: ``["ready", ""]`` or ``["load-error", "<the user's traceback>"]``;
* edge → runtime, per call: ``{"event": {...}, "context": {...}}`` (``LambdaContext``'s
  state: names, request id, the deadline on the system-wide monotonic clock);
* runtime → edge, per call: ``{"result": "<Lambda's JSON text>" | null, "error":
  ["<detail>", "<traceback>"] | null, "peak_memory_mb": int, "fatal": bool}``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import IO, Any

from edgeproxy.functions.isolation import LambdaContext

FRAME = struct.Struct(">I")


class WorkerFailure(Exception):
    """A handler failed in a worker process; ``traceback`` was formatted there."""

    def __init__(self, detail: str, traceback: str = "") -> None:
        super().__init__(detail, traceback)
        self.detail = detail
        self.traceback = traceback

    def __str__(self) -> str:
        return self.detail


@dataclass(frozen=True, slots=True)
class Reply:
    """A worker's answer to one call: the result as Lambda's JSON, or a failure."""

    result_json: str | None
    failure: WorkerFailure | None
    peak_memory_mb: int
    fatal: bool = False  # the runtime cannot go on (out of memory): never reused


def frame(message: Any) -> bytes:
    payload = json.dumps(message, separators=(",", ":")).encode()
    return FRAME.pack(len(payload)) + payload


def call_message(event: Any, context: LambdaContext) -> bytes:
    return frame({"event": event, "context": context.__getstate__()})


def context_of(state: dict[str, Any]) -> LambdaContext:
    context = LambdaContext.__new__(LambdaContext)
    context.__setstate__(state)
    return context


def reply_message(reply: Reply) -> bytes:
    failure = reply.failure
    return frame(
        {
            "result": reply.result_json,
            "error": None if failure is None else [failure.detail, failure.traceback],
            "peak_memory_mb": reply.peak_memory_mb,
            "fatal": reply.fatal,
        }
    )


def reply_of(message: Any) -> Reply:
    """A reply message as a Reply; WorkerFailure for one that is not a reply."""
    if not isinstance(message, dict):
        raise WorkerFailure(f"Runtime.InvalidReply: the runtime answered {message!r:.200}")
    error = message.get("error")
    failure = None if error is None else WorkerFailure(str(error[0]), str(error[1] or ""))
    result = message.get("result")
    return Reply(
        None if result is None else str(result),
        failure,
        int(message.get("peak_memory_mb") or 0),
        bool(message.get("fatal")),
    )


def read_frame(channel: IO[bytes]) -> Any:
    """The next message (blocking, inside a runtime process); None when the edge closed."""
    head = channel.read(FRAME.size)
    if len(head) < FRAME.size:
        return None
    (size,) = FRAME.unpack(head)
    return json.loads(channel.read(size))
