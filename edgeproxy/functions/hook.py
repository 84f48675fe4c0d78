"""A hook: one stage bound to one loaded function (a ``lambda_function_association``), with
the limits it runs under."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeproxy.functions.concurrency import DEFAULT_CONCURRENCY
from edgeproxy.functions.containers import FunctionCode
from edgeproxy.functions.isolation import REGION, Isolation
from edgeproxy.functions.loader import LoadedHandler
from edgeproxy.stages import Stage

DEFAULT_MEMORY_MB = 128  # viewer events are capped at 128 MB; origin events default to it
_VIEWER_STAGES = frozenset({Stage.VIEWER_REQUEST, Stage.VIEWER_RESPONSE})


@dataclass(frozen=True, slots=True)
class Hook:
    """A stage bound to a handler (one ``lambda_function_association``)."""

    stage: Stage
    handler: LoadedHandler | FunctionCode  # FunctionCode: runs in its own runtime processes
    timeout_s: float
    include_body: bool = False
    isolation: Isolation = "process"
    memory_mb: int = DEFAULT_MEMORY_MB
    concurrency: int = DEFAULT_CONCURRENCY  # calls of the function at once (concurrency.py)
    # Lambda's name for the function, read several times per call: made once.
    function_name: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "function_name", _function_name(self.handler))

    @property
    def memory_limit_mb(self) -> int | None:
        """A hard memory bound: CloudFront caps viewer events at 128 MB; an origin event's
        memory is whatever the function was given, which the config does not say."""
        return self.memory_mb if self.stage in _VIEWER_STAGES else None

    @property
    def worker_spec(self) -> str:
        """The spec a worker process loads: absolute, so the worker needs no base_dir."""
        handler = self.handler
        if isinstance(handler, FunctionCode):
            return handler.spec
        if handler.path is None or not handler.from_file:
            return handler.name
        return f"{handler.path}:{handler.name.rpartition(':')[2]}"


def _function_name(handler: LoadedHandler | FunctionCode) -> str:
    if isinstance(handler, FunctionCode):
        return f"{REGION}.{handler.stem}"
    stem = handler.path.stem if handler.path else handler.name.split(":")[0]
    return f"{REGION}.{stem}"
