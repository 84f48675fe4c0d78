"""The HTTPS listener's certificates: a local certificate authority made on first start, and a
certificate it signs for the names a viewer may use (localhost, 127.0.0.1, ::1, the
distribution's domain name and ``aliases``, a specific listener address), made with the
``cryptography`` package and kept in ``edge.tls.cert_dir``:

    ca.pem          the CA certificate: what curl --cacert, an OS store or a browser trusts
    ca-key.pem      its private key (0600), used only to sign the next leaf certificate
    leaf.pem        the listener's certificate
    leaf-key.pem    its private key (0600)

The CA is trusted by the user's browsers and OS, so it is made harmless beyond this edge: a
critical NameConstraints extension limits it to the names it signs for (localhost, the
loopback networks 127.0.0.0/8 and ::1, the distribution's domain name and aliases, a
specific listener address; ``*.example.com`` permits the names under example.com), so even
its key in other hands can vouch for no other site; and it is valid two years at most.

Both are reused on later starts, so a CA trusted once stays trusted. The leaf certificate is
made again when the names change, when it is within ``RENEW_BEFORE`` of its end, or when it
was not signed by the CA in the folder; the CA when it is missing, broken or about to expire,
when its constraints do not permit a name the leaf needs (a new alias), or when it has none
(made by an older edgeproxy): then a warning names the old CA to remove from trust stores and
the new one to trust. Several worker processes may start at once: a file lock makes one of
them write and the others read, and every file is written whole (a temporary file renamed
into place).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import logging
import os
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgeproxy.config.config_model import Config
from edgeproxy.viewer.name_constraints import name_constraints, unfit
from edgeproxy.viewer.request_checks import viewer_names

log = logging.getLogger("edgeproxy.certs")

# Under two years with the hour's backdate: a trusted root that does not outlive its use.
CA_LIFETIME = dt.timedelta(days=729)
# Under the 825 days Apple's TLS clients accept for any certificate, and the 398 days
# browsers accept from public CAs, so no client refuses it for its lifetime.
LEAF_LIFETIME = dt.timedelta(days=397)
RENEW_BEFORE = dt.timedelta(days=30)
_BACKDATE = dt.timedelta(hours=1)  # a clock slightly behind still accepts a fresh leaf

# Names every leaf certificate carries: how a viewer on this machine reaches the edge.
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class CertificateFiles:
    """Where the CA and the leaf certificate live."""

    folder: Path

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca-key.pem"

    @property
    def leaf_cert(self) -> Path:
        return self.folder / "leaf.pem"

    @property
    def leaf_key(self) -> Path:
        return self.folder / "leaf-key.pem"


def cert_folder(config: Config) -> Path:
    """``edge.tls.cert_dir``, relative to the config file's folder unless absolute."""
    return config.path(config.edge.tls.cert_dir)


def leaf_names(config: Config) -> tuple[str, ...]:
    """The names the leaf certificate is for: the local ones, the distribution's domain name
    and aliases, and the listener's own address when it is a specific one (``--host
    127.0.0.2``): the Host names the edge serves (``request_checks.viewer_names``)."""
    names = [*LOCAL_NAMES, *viewer_names(config)]
    return tuple(dict.fromkeys(_normalised(n) for n in names))


def ensure_certificates(
    folder: Path, names: Sequence[str], *, now: dt.datetime | None = None
) -> CertificateFiles:
    """The CA and a leaf certificate for ``names`` in ``folder``: reused when still good,
    made when missing, expiring, or for other names."""
    now = now or dt.datetime.now(dt.UTC)
    files = CertificateFiles(folder)
    ordered = list(dict.fromkeys(_normalised(n) for n in names))
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(folder / ".lock"):
        ca = _usable_ca(files, ordered, now) or _new_ca(files, ordered, now)
        if not _leaf_is_current(files, ca[0], frozenset(ordered), now):
            _new_leaf(files, ca, ordered, now)
    return files


def listener_context(config: Config) -> ssl.SSLContext:
    """The HTTPS listener's context for ``config``, its certificates made first if needed."""
    return server_context(ensure_certificates(cert_folder(config), leaf_names(config)))


def server_context(files: CertificateFiles) -> ssl.SSLContext:
    """The HTTPS listener's TLS settings: the leaf certificate, TLS 1.2 or newer (CloudFront's
    TLSv1.2_2021 floor), ALPN ``http/1.1`` (the viewer protocol speaks HTTP/1.1)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.leaf_cert, files.leaf_key)
    context.set_alpn_protocols(["http/1.1"])
    return context


def certificate_names(path: Path) -> tuple[str, ...]:
    """The DNS names and IP addresses a certificate is for (its subjectAltName)."""
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return _san_names(cert)


def not_valid_after(path: Path) -> dt.datetime:
    return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc


# -- the CA ------------------------------------------------------------------------------

_CA = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def _usable_ca(files: CertificateFiles, names: Sequence[str], now: dt.datetime) -> _CA | None:
    """The CA in the folder, when it can sign for ``names`` for a while yet."""
    try:
        cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or cert.public_key() != key.public_key():
        return None
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return None
    problem = unfit(cert, names, CA_LIFETIME + _BACKDATE)
    if problem:
        log.warning(
            "the local CA %s (%s) %s: made a new one there. Remove the old one from the trust "
            "stores you added it to and trust the new one (`edgeproxy cert` says how)",
            files.ca_cert,
            cert.subject.rfc4514_string(),
            problem,
        )
        return None
    return cert, key


def _new_ca(files: CertificateFiles, names: Sequence[str], now: dt.datetime) -> _CA:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgeproxy"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"edgeproxy local CA {os.urandom(4).hex()}"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        _builder(name, name, key.public_key(), now, CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(name_constraints(names), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(files.ca_key, _key_pem(key), private=True)
    _write(files.ca_cert, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


# -- the leaf ----------------------------------------------------------------------------


def _leaf_is_current(
    files: CertificateFiles, ca: x509.Certificate, wanted: frozenset[str], now: dt.datetime
) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(files.leaf_cert.read_bytes())
        key = serialization.load_pem_private_key(files.leaf_key.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    return (
        cert.public_key() == key.public_key()
        and frozenset(_san_names(cert)) == wanted
        and cert.not_valid_after_utc - now >= RENEW_BEFORE
    )


def _new_leaf(files: CertificateFiles, ca: _CA, names: list[str], now: dt.datetime) -> None:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edgeproxy"),
            x509.NameAttribute(NameOID.COMMON_NAME, names[0]),
        ]
    )
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    lifetime = min(LEAF_LIFETIME, ca_cert.not_valid_after_utc - now)  # not past its CA
    cert = (
        _builder(subject, ca_cert.subject, key.public_key(), now, lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(files.leaf_key, _key_pem(key), private=True)
    _write(files.leaf_cert, cert.public_bytes(serialization.Encoding.PEM))


# -- pieces ------------------------------------------------------------------------------


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: dt.datetime,
    lifetime: dt.timedelta,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + lifetime)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _general_names(names: Sequence[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        address = _ip(name)
        out.append(x509.IPAddress(address) if address is not None else x509.DNSName(name))
    return out


def _san_names(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    dns = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
    ips = [str(a) for a in san.get_values_for_type(x509.IPAddress)]
    return (*dns, *ips)


def _normalised(name: str) -> str:
    """A name as the certificate writes it: an IP address in its short form, a host name in
    lower case without brackets or a trailing dot."""
    name = name.strip().strip("[]").rstrip(".")
    address = _ip(name)
    return str(address) if address is not None else name.lower()


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write a whole file: a temporary file beside it, renamed into place."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(temporary, path)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# -- `edgeproxy cert` --------------------------------------------------------------------

_TRUST_STEPS = (
    ("curl", "curl --cacert {ca} {url}"),
    ("Python", 'httpx.get(url, verify="{ca}")  or  SSL_CERT_FILE={ca}'),
    ("Node.js", "NODE_EXTRA_CA_CERTS={ca}"),
    (
        "Debian, Ubuntu",
        "sudo cp {ca} /usr/local/share/ca-certificates/edgeproxy.crt"
        " && sudo update-ca-certificates",
    ),
    (
        "Fedora, RHEL",
        "sudo cp {ca} /etc/pki/ca-trust/source/anchors/edgeproxy.pem && sudo update-ca-trust",
    ),
    (
        "macOS",
        "sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {ca}",
    ),
    ("Windows", "certutil -addstore -f ROOT {ca}"),
    (
        "Chrome, Chromium (Linux)",
        "certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n edgeproxy -i {ca}  (libnss3-tools),"
        " or Settings > Privacy and security > Security > Manage certificates > Authorities"
        " > Import; on macOS and Windows Chrome uses the system store above",
    ),
    (
        "Firefox",
        "Settings > Privacy & Security > Certificates > View Certificates > Authorities"
        " > Import {ca}",
    ),
)


def shown_path(path: Path, here: Path | None = None) -> Path:
    """``path`` relative to ``here`` (default: the working folder) when it is under it, so
    what is printed names no absolute path of this machine; else as it is."""
    here = (here or Path.cwd()).resolve()
    try:
        return path.resolve().relative_to(here)
    except ValueError:
        return path


def describe(files: CertificateFiles, url: str) -> str:
    """What ``edgeproxy cert`` prints: where the CA is, what the leaf is for, how to trust;
    paths under the working folder relative to it."""
    ca_file, leaf_file = shown_path(files.ca_cert), shown_path(files.leaf_cert)
    names = ", ".join(certificate_names(files.leaf_cert))
    until = not_valid_after(files.leaf_cert).date().isoformat()
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    ca_until = ca.not_valid_after_utc.date().isoformat()
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    scope = ", ".join(str(t.value) for t in constraints.permitted_subtrees or ())
    lines = [
        f"CA certificate:   {ca_file}, {ca.subject.rfc4514_string()}",
        f"                  valid until {ca_until}, may sign only for {scope}",
        f"HTTPS certificate for {names}",
        f"                  {leaf_file}, valid until {until} (renewed by edgeproxy)",
        "",
        "Trust the CA once; edgeproxy keeps it and its key (0600) in that folder:",
    ]
    width = max(len(who) for who, _ in _TRUST_STEPS)
    for who, step in _TRUST_STEPS:
        lines.append(f"  {who:<{width}}  {step.format(ca=ca_file, url=url)}")
    return "\n".join(lines)
