"""What the local CA may sign for: an X.509 NameConstraints extension (RFC 5280 4.2.1.10,
critical) permitting the loopback networks and the names the edge serves, and the check that
a CA on disk still fits (``viewer/certs.py`` makes and reuses the certificates)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence

from cryptography import x509

# Networks the CA may always sign for: every loopback address.
LOOPBACK_NETWORKS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def unfit(ca: x509.Certificate, names: Sequence[str], longest: dt.timedelta) -> str:
    """Why a CA that is otherwise usable is not: too long a life, no name constraints (an
    older edgeproxy made it), or constraints that leave out a name; "" when it is fit."""
    if ca.not_valid_after_utc - ca.not_valid_before_utc > longest:
        return f"is valid longer than {longest.days} days"
    try:
        constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    except x509.ExtensionNotFound:
        return "may sign for any name (no name constraints)"
    subtrees = constraints.value.permitted_subtrees or []
    if not constraints.critical or constraints.value.excluded_subtrees or not subtrees:
        return "has name constraints of another kind"
    outside = [name for name in names if not _permitted(name, subtrees)]
    return f"may not sign for {', '.join(outside)}" if outside else ""


def _permitted(name: str, subtrees: Sequence[x509.GeneralName]) -> bool:
    """Whether a permitted subtree covers ``name`` (RFC 5280 4.2.1.10: a DNS subtree is the
    name and every name under it; an address subtree is a network)."""
    address = _address(name)
    if address is not None:
        return any(
            isinstance(t, x509.IPAddress) and address in t.value
            for t in subtrees
            if isinstance(t.value, ipaddress.IPv4Network | ipaddress.IPv6Network)
        )
    domain = name.removeprefix("*.")
    return any(
        isinstance(t, x509.DNSName) and (domain == t.value or domain.endswith("." + t.value))
        for t in subtrees
    )


def name_constraints(names: Sequence[str]) -> x509.NameConstraints:
    """The subtrees the CA may sign within: every loopback address, and each of ``names``
    (a wildcard alias as the domain under it) that they do not already cover."""
    subtrees: list[x509.GeneralName] = [x509.IPAddress(net) for net in LOOPBACK_NETWORKS]
    for name in names:
        if _permitted(name, subtrees):
            continue
        address = _address(name)
        if address is not None:
            subtrees.append(x509.IPAddress(ipaddress.ip_network(address)))
        else:
            subtrees.append(x509.DNSName(name.removeprefix("*.")))
    return x509.NameConstraints(permitted_subtrees=subtrees, excluded_subtrees=None)


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None
