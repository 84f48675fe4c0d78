"""``EdgeRequest.copy`` and ``EdgeResponse.copy`` (the miss path's cheap stand-ins for
``dataclasses.replace``) copy every field: a field added later and left out of ``copy`` would
silently take its default in every copy."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from edgeproxy.messages import EdgeRequest, EdgeResponse


@pytest.mark.parametrize("kind", [EdgeRequest, EdgeResponse])
def test_copy_keeps_every_field(kind: Any) -> None:
    values = {f.name: object() for f in fields(kind)}  # no default is any of these
    original = kind(**values)
    copied = original.copy()
    assert copied is not original
    assert {name: getattr(copied, name) for name in values} == values
    copied.headers = []
    assert original.headers is values["headers"]  # setting a copy's field leaves the original
