"""The message protocol between the edge and a runtime process, whatever its language.

Each message is one frame: a 4-byte big-endian length, then that many bytes of UTF-8 JSON
(JSON, not pickle, so that a Node.js runtime speaks it too; node_runtime.mjs is the other
implementation), encoded and decoded with orjson (a call's event in about 3 µs, where the
standard library takes 20). The messages, in order:

* runtime → edge, once: ``["ready", ""]`` or ``["load-error", "<the user's traceback>"]``;
* edge → runtime, per call: ``{"event": {...}, "context": {...}}`` (``LambdaContext``'s
  state: names, request id, the deadline on the system-wide monotonic clock);
* runtime → edge, per call: ``{"error": ["<detail>", "<traceback>"] | null,
  "peak_memory_mb": int, "fatal": bool, "result": <the result>}``, the result being the JSON
  text Lambda's runtime marshalled it to, spliced in as it is (never encoded twice).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import IO, Any

import orjson

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
    """A runtime's answer to one call: the result (parsed from Lambda's JSON), or a failure."""

    result: Any
    failure: WorkerFailure | None
    peak_memory_mb: int
    fatal: bool = False  # the runtime cannot go on (out of memory): never reused


def frame(message: Any) -> bytes:
    return framed(orjson.dumps(message))


def framed(payload: bytes) -> bytes:
    return FRAME.pack(len(payload)) + payload


def decode(payload: bytes) -> Any:
    """A message's JSON; ValueError when it is not JSON."""
    return orjson.loads(payload)


def call_message(event: Any, context: LambdaContext) -> bytes:
    return frame({"event": event, "context": context.__getstate__()})


def context_of(state: dict[str, Any]) -> LambdaContext:
    context = LambdaContext.__new__(LambdaContext)
    context.__setstate__(state)
    return context


def reply_message(
    result_json: bytes | None, failure: WorkerFailure | None, peak_memory_mb: int, fatal: bool
) -> bytes:
    """A reply frame; ``result_json`` is spliced in as the result's JSON text."""
    head = orjson.dumps(
        {
            "error": None if failure is None else [failure.detail, failure.traceback],
            "peak_memory_mb": peak_memory_mb,
            "fatal": fatal,
        }
    )
    return framed(head[:-1] + b',"result":' + (result_json or b"null") + b"}")


def reply_of(message: Any) -> Reply:
    """A reply message as a Reply; WorkerFailure for one that is not a reply."""
    if not isinstance(message, dict):
        raise WorkerFailure(f"Runtime.InvalidReply: the runtime answered {message!r:.200}")
    error = message.get("error")
    failure = None if error is None else WorkerFailure(str(error[0]), str(error[1] or ""))
    return Reply(
        message.get("result"),
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
    return orjson.loads(channel.read(size))
