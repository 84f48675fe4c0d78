"""Origin names to addresses: ``edge.resolve`` first, literal addresses, then DNS only when
allowed."""

from __future__ import annotations

import socket
from collections.abc import Mapping

from aiohttp.abc import AbstractResolver, ResolveResult


class StaticResolver(AbstractResolver):
    """Resolves names from ``edge.resolve`` and literal addresses; nothing else is looked up
    unless a fallback resolver is given (tests never reach DNS)."""

    def __init__(self, table: Mapping[str, str], fallback: AbstractResolver | None) -> None:
        self._table = {"localhost": "127.0.0.1", **table}
        self._fallback = fallback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self._table.get(host.lower(), host)
        try:
            ip = _ip_family(address)
        except ValueError:
            if self._fallback is None:
                raise OSError(f"cannot resolve {host!r}: not in edge.resolve") from None
            return await self._fallback.resolve(host, port, family)
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": ip,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        if self._fallback is not None:
            await self._fallback.close()


def _ip_family(address: str) -> socket.AddressFamily:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, address)
        except OSError:
            continue
        return family
    raise ValueError(address)
