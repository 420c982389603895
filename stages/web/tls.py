"""TLS for the live view: the configured certificate (live.tls_cert / live.tls_key) or, when the
server listens beyond 127.0.0.1 without one, a self-signed certificate made once into OUT/tls/
(as Frigate does) with the `cryptography` library, and its SHA-256 fingerprint logged so a user can
check what the browser shows. The key file is mode 0600; both are kept and reused by later runs.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from vidpipe.pipeline.errors import ConfigError

log = logging.getLogger(__name__)

VALID_DAYS = 825  # the longest validity browsers accept for a server certificate


def fingerprint(cert_pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def self_signed(folder: Path, host: str) -> tuple[Path, Path]:
    """OUT/tls/cert.pem and key.pem, made now if they are not there yet."""
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.DNSName(socket.gethostname())]
    for address in {host, "127.0.0.1"} - {"0.0.0.0", "::", ""}:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            names.append(x509.DNSName(address))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"vidpipe live on {socket.gethostname()}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    log.info("made a self-signed TLS certificate: %s", cert_path)
    return cert_path, key_path


def tls_files(cert: str, key: str, out_dir: Path, host: str, beyond_loopback: bool,
              announce: bool = True) -> tuple[Path, Path] | None:
    """The (cert, key) to serve https with, None for plain http (loopback without a certificate);
    `announce`: log the certificate's fingerprint."""
    if cert:
        paths = Path(cert), Path(key)
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(*paths)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"live.tls_cert: cannot use {cert} with {key}: {exc}", key="live.tls_cert") from None
    elif beyond_loopback:
        paths = self_signed(out_dir / "tls", host)
    else:
        return None
    if announce:
        log.info("TLS certificate %s, SHA-256 fingerprint %s", paths[0], fingerprint(paths[0].read_bytes()))
    return paths
