"""The local CA and the HTTPS certificate: made once, reused, made again when the names
change or the end is near, safe when several processes start at once; `edgeproxy cert`."""

from __future__ import annotations

import datetime as dt
import ssl
import stat
import threading
from pathlib import Path

import pytest
import yaml
from conftest import distribution
from cryptography import x509

from edgeproxy import cli
from edgeproxy.certs import (
    LEAF_LIFETIME,
    CertificateFiles,
    cert_folder,
    certificate_names,
    ensure_certificates,
    leaf_names,
    not_valid_after,
    server_context,
)
from edgeproxy.config import load_config

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


def test_other_names_get_a_new_leaf_from_the_same_ca(tmp_path: Path):
    before = read(ensure_certificates(tmp_path, NAMES, now=NOW))
    files = ensure_certificates(tmp_path, (*NAMES, "shop.example.com"), now=NOW)
    after = read(files)
    assert after["ca.pem"] == before["ca.pem"]
    assert after["leaf.pem"] != before["leaf.pem"]
    assert "shop.example.com" in certificate_names(files.leaf_cert)


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
    expected = ("localhost", "127.0.0.1", "::1", "www.example.com", "*.shop.example", *extra)
    assert leaf_names(config) == tuple(dict.fromkeys(expected))


def test_cert_command_makes_the_ca_and_says_how_to_trust_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    path = write_config(tmp_path, listeners={"host": "127.0.0.1", "https_port": 9443})
    assert cli.main(["cert", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    ca = tmp_path / "site" / ".edgeproxy" / "certs" / "ca.pem"
    assert ca.is_file()
    assert f"CA certificate:   {ca}" in out
    assert f"curl --cacert {ca} https://localhost:9443/" in out
    assert "update-ca-certificates" in out  # the OS store
    assert "Firefox" in out and "nssdb" in out  # browsers
    assert "www.example.com" in out
    first = ca.read_bytes()
    assert cli.main(["cert", "--config", str(path)]) == 0
    assert ca.read_bytes() == first  # shown again, not made again
