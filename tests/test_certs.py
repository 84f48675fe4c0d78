"""The local CA and the HTTPS certificate: made once, reused, made again when the names
change or the end is near, safe when several processes start at once; `edgeproxy cert`."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import ssl
import stat
import threading
from pathlib import Path

import pytest
import yaml
from conftest import distribution
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgeproxy import cli
from edgeproxy.config.loading import load_config
from edgeproxy.viewer.certs import (
    LEAF_LIFETIME,
    CertificateFiles,
    cert_folder,
    certificate_names,
    ensure_certificates,
    leaf_names,
    not_valid_after,
    server_context,
)

NAMES = ("localhost", "127.0.0.1", "::1", "www.example.com")
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def read(files: CertificateFiles) -> dict[str, bytes]:
    paths = (files.ca_cert, files.ca_key, files.leaf_cert, files.leaf_key)
    return {p.name: p.read_bytes() for p in paths}


def test_first_start_makes_a_ca_and_a_leaf_for_every_name(tmp_path: Path):
    files = ensure_certificates(tmp_path / "certs", NAMES, now=NOW)
    assert set(certificate_names(files.leaf_cert)) == set(NAMES)
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    leaf = x509.load_pem_x509_certificate(files.leaf_cert.read_bytes())
    leaf.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.not_valid_after_utc == NOW + LEAF_LIFETIME
    for key in (files.ca_key, files.leaf_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_later_starts_reuse_both(tmp_path: Path):
    before = read(ensure_certificates(tmp_path, NAMES, now=NOW))
    after = read(ensure_certificates(tmp_path, NAMES, now=NOW + dt.timedelta(days=100)))
    assert after == before


@pytest.mark.parametrize("name", ["127.0.0.2", "shop.www.example.com"])
def test_other_names_within_the_cas_constraints_get_a_new_leaf_from_the_same_ca(
    tmp_path: Path, name: str
):
    before = read(ensure_certificates(tmp_path, NAMES, now=NOW))
    files = ensure_certificates(tmp_path, (*NAMES, name), now=NOW)
    after = read(files)
    assert after["ca.pem"] == before["ca.pem"]
    assert after["leaf.pem"] != before["leaf.pem"]
    assert name in certificate_names(files.leaf_cert)


def test_a_leaf_near_its_end_is_renewed(tmp_path: Path):
    files = ensure_certificates(tmp_path, NAMES, now=NOW)
    first_end = not_valid_after(files.leaf_cert)
    ensure_certificates(tmp_path, NAMES, now=first_end - dt.timedelta(days=10))
    assert not_valid_after(files.leaf_cert) > first_end


def test_a_leaf_from_another_ca_is_replaced(tmp_path: Path):
    files = ensure_certificates(tmp_path, NAMES, now=NOW)
    files.ca_cert.unlink()  # a new CA will be made: the old leaf is not signed by it
    ensure_certificates(tmp_path, NAMES, now=NOW)
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    x509.load_pem_x509_certificate(files.leaf_cert.read_bytes()).verify_directly_issued_by(ca)


def test_a_broken_leaf_key_is_replaced(tmp_path: Path):
    files = ensure_certificates(tmp_path, NAMES, now=NOW)
    files.leaf_key.write_text("not a key")
    ensure_certificates(tmp_path, NAMES, now=NOW)
    server_context(files)  # loads: the key matches the certificate again


def test_starts_at_the_same_time_agree_on_one_ca(tmp_path: Path):
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def one() -> None:
        start.wait()
        try:
            ensure_certificates(tmp_path, NAMES, now=NOW)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    files = CertificateFiles(tmp_path)
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    x509.load_pem_x509_certificate(files.leaf_cert.read_bytes()).verify_directly_issued_by(ca)
    server_context(files)


def test_context_speaks_http11_over_tls12_or_newer(tmp_path: Path):
    context = server_context(ensure_certificates(tmp_path, NAMES))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def write_config(tmp_path: Path, **edge: object) -> Path:
    document = distribution(8000)
    document["distribution"]["aliases"] = ["www.example.com", "*.shop.example"]
    document["edge"].update(edge)
    path = tmp_path / "site" / "distribution.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(document))
    return path


def test_cert_dir_is_relative_to_the_config_file(tmp_path: Path):
    config = load_config(write_config(tmp_path)).config
    assert cert_folder(config) == tmp_path / "site" / ".edgeproxy" / "certs"
    absolute = tmp_path / "elsewhere"
    config = load_config(write_config(tmp_path / "b", tls={"cert_dir": str(absolute)})).config
    assert cert_folder(config) == absolute


@pytest.mark.parametrize(
    ("host", "extra"), [("127.0.0.1", ()), ("0.0.0.0", ()), ("127.0.0.2", ("127.0.0.2",))]
)
def test_leaf_names_are_local_names_aliases_and_a_specific_listener(
    tmp_path: Path, host: str, extra: tuple[str, ...]
):
    path = write_config(tmp_path, listeners={"host": host, "http_port": 0})
    config = load_config(path).config
    domain = "d111111abcdef8.cloudfront.net"  # the distribution's own name is served too
    expected = (
        "localhost", "127.0.0.1", "::1", domain, "www.example.com", "*.shop.example", *extra
    )  # fmt: skip
    assert leaf_names(config) == tuple(dict.fromkeys(expected))


def test_cert_command_makes_the_ca_and_says_how_to_trust_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = write_config(tmp_path, listeners={"host": "127.0.0.1", "https_port": 9443})
    assert cli.main(["cert", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    ca = tmp_path / "site" / ".edgeproxy" / "certs" / "ca.pem"
    assert ca.is_file()
    assert f"CA certificate:   {ca}, " in out
    assert "may sign only for 127.0.0.0/8, ::1/128, localhost, " in out
    assert f"curl --cacert {ca} https://localhost:9443/" in out
    assert "update-ca-certificates" in out  # the OS store
    assert "Firefox" in out and "nssdb" in out  # browsers
    assert "www.example.com" in out
    first = ca.read_bytes()
    assert cli.main(["cert", "--config", str(path)]) == 0
    assert ca.read_bytes() == first  # shown again, not made again


# -- the CA signs only for the names it serves ------------------------------------------------

DOMAIN = "d111111abcdef8.cloudfront.net"
CONSTRAINED = (*NAMES, DOMAIN, "*.shop.example")


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def permitted(ca: x509.Certificate) -> set[str]:
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    assert constraints.value.excluded_subtrees is None
    return {str(name.value) for name in constraints.value.permitted_subtrees or ()}


def test_the_ca_is_name_constrained_to_what_it_signs_for(tmp_path: Path):
    files = ensure_certificates(tmp_path, CONSTRAINED, now=NOW)
    ca = load(files.ca_cert)
    assert permitted(ca) == {
        "localhost",
        "www.example.com",
        DOMAIN,
        "shop.example",  # *.shop.example: the names under it
        "127.0.0.0/8",
        "::1/128",
    }


def test_ca_and_leaf_are_valid_two_years_and_398_days_at_most(tmp_path: Path):
    files = ensure_certificates(tmp_path, CONSTRAINED, now=NOW)
    for path, most in ((files.ca_cert, 2 * 365), (files.leaf_cert, 398)):
        cert = load(path)
        assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=most)
    assert load(files.leaf_cert).not_valid_after_utc <= load(files.ca_cert).not_valid_after_utc


def leaf_signed_by_the_ca(files: CertificateFiles, name: str, key_path: Path) -> Path:
    """A leaf for ``name`` signed with the CA's own key, as anyone holding ca-key.pem could."""
    ca_key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    address = ipaddress.ip_address(name) if name[0].isdigit() else None
    san = x509.IPAddress(address) if address else x509.DNSName(name)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test leaf")]))
        .issuer_name(load(files.ca_cert).subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path = key_path.with_suffix(".cert.pem")
    path.write_bytes(pem)
    return path


def verify_with_cryptography(files: CertificateFiles, leaf: Path, name: str) -> None:
    address = ipaddress.ip_address(name) if name[0].isdigit() else None
    subject = verification.IPAddress(address) if address else verification.DNSName(name)
    store = verification.Store([load(files.ca_cert)])
    verifier = verification.PolicyBuilder().store(store).build_server_verifier(subject)
    verifier.verify(load(leaf), [])


async def tls_handshake(files: CertificateFiles, leaf: Path, key: Path, name: str) -> None:
    """A real TLS handshake: a server with ``leaf``, a client trusting only ca.pem."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(leaf, key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    listening = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=server)
    port = listening.sockets[0].getsockname()[1]
    client = ssl.create_default_context(cafile=files.ca_cert)
    try:
        _, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname=name
        )
        writer.close()
    finally:
        listening.close()
        await listening.wait_closed()


@pytest.mark.parametrize("name", ["localhost", "www.example.com", "a.shop.example", "127.0.0.9"])
async def test_a_leaf_within_the_constraints_verifies(tmp_path: Path, name: str):
    files = ensure_certificates(tmp_path / "certs", CONSTRAINED, now=dt.datetime.now(dt.UTC))
    leaf = leaf_signed_by_the_ca(files, name, tmp_path / "key.pem")
    verify_with_cryptography(files, leaf, name)
    await tls_handshake(files, leaf, tmp_path / "key.pem", name)


@pytest.mark.parametrize(
    "name", ["bank.example", "example.com", "evil.localhost.example", "10.0.0.1"]
)
async def test_a_leaf_outside_the_constraints_fails_verification(tmp_path: Path, name: str):
    # Even with the CA's key in hand, no certificate it signs is trusted for other names
    files = ensure_certificates(tmp_path / "certs", CONSTRAINED, now=dt.datetime.now(dt.UTC))
    leaf = leaf_signed_by_the_ca(files, name, tmp_path / "key.pem")
    with pytest.raises(verification.VerificationError):
        verify_with_cryptography(files, leaf, name)
    with pytest.raises(ssl.SSLCertVerificationError, match="subtree"):
        await tls_handshake(files, leaf, tmp_path / "key.pem", name)


def old_unconstrained_ca(files: CertificateFiles) -> None:
    """What edgeproxy made before: no NameConstraints, valid ten years."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edgeproxy local CA 0ld0ca00")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    files.folder.mkdir(parents=True, exist_ok=True)
    files.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.ca_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def test_a_ca_without_constraints_from_an_older_version_is_replaced_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    files = CertificateFiles(tmp_path)
    old_unconstrained_ca(files)
    with caplog.at_level(logging.WARNING, logger="edgeproxy.certs"):
        ensure_certificates(tmp_path, CONSTRAINED, now=NOW)
    ca = load(files.ca_cert)
    assert "0ld0ca00" not in ca.subject.rfc4514_string()
    assert "localhost" in permitted(ca)
    load(files.leaf_cert).verify_directly_issued_by(ca)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "edgeproxy local CA 0ld0ca00" in warning  # which one to remove from trust stores
    assert str(files.ca_cert) in warning and "edgeproxy cert" in warning


def test_a_name_outside_the_cas_constraints_gets_a_new_ca_and_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    before = read(ensure_certificates(tmp_path, NAMES, now=NOW))
    with caplog.at_level(logging.WARNING, logger="edgeproxy.certs"):
        files = ensure_certificates(tmp_path, (*NAMES, "shop.example.net"), now=NOW)
    assert read(files)["ca.pem"] != before["ca.pem"]
    assert "shop.example.net" in permitted(load(files.ca_cert))
    assert "shop.example.net" in caplog.text


def test_cert_command_shows_paths_under_the_working_folder_relative_to_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    # Run from the project: no absolute path of this machine in what it prints (issue 16).
    path = write_config(tmp_path, listeners={"host": "127.0.0.1", "https_port": 9443})
    monkeypatch.chdir(tmp_path)
    assert cli.main(["cert", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    ca = Path("site", ".edgeproxy", "certs", "ca.pem")
    assert f"CA certificate:   {ca}, " in out
    assert f"                  {ca.with_name('leaf.pem')}, valid until" in out
    assert f"curl --cacert {ca} https://localhost:9443/" in out
    assert str(tmp_path) not in out
