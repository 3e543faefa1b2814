"""Credentials of the services once they listen beyond 127.0.0.1: Dask TLS certificates, the Prefect
API's basic-auth string, written owner-only (folder 0700, files 0600) and handed to processes in
their environment, never printed or logged.

- **Dask**: a private CA and one certificate (for every address the stack uses) signed by it;
  scheduler, workers and clients present it and require the peer's (``distributed``'s
  ``comm.require-encryption`` and ``comm.tls.*`` settings, as ``DASK_DISTRIBUTED__COMM__...``
  variables; the scheme becomes ``tls://``).  A process without the certificate cannot connect.
- **Prefect**: ``PREFECT_SERVER_API_AUTH_STRING`` on the server, ``PREFECT_API_AUTH_STRING`` on its
  clients (``user:password``); a request without it is answered 401.
- **Object store**: keys of its own (:mod:`stack.objectstore`).  **PostgreSQL**: SCRAM passwords,
  loopback only (:mod:`stack.postgres`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

CA_FILE, CERT_FILE, KEY_FILE, AUTH_FILE = "dask-ca.pem", "dask-cert.pem", "dask-key.pem", "prefect-auth"
VALID_DAYS = 365


def _write_private(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path

    def dask_env(self) -> dict[str, str]:
        """The ``distributed`` settings of a scheduler, worker or client using these files."""
        env = {"DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
               "DASK_DISTRIBUTED__COMM__DEFAULT_SCHEME": "tls",
               "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(self.ca)}
        for role in ("SCHEDULER", "WORKER", "CLIENT"):
            env[f"DASK_DISTRIBUTED__COMM__TLS__{role}__CERT"] = str(self.cert)
            env[f"DASK_DISTRIBUTED__COMM__TLS__{role}__KEY"] = str(self.key)
        return env


def make_tls(folder: Path, hosts: list[str]) -> TlsFiles:
    """A CA and a certificate for ``hosts`` (IP addresses or names) signed by it, into ``folder``
    (kept when present: the certificates of a stack survive ``down``/``up``)."""
    files = TlsFiles(folder / CA_FILE, folder / CERT_FILE, folder / KEY_FILE)
    if all(p.is_file() for p in (files.ca, files.cert, files.key)):
        return files
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cstrack stack CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cstrack")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    _write_private(files.key, key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    _write_private(files.cert, cert.public_bytes(pem))
    _write_private(files.ca, ca.public_bytes(pem))
    return files


def prefect_auth(folder: Path) -> str:
    """The Prefect API's ``user:password`` (from ``folder/prefect-auth``, created the first time)."""
    path = folder / AUTH_FILE
    if path.is_file():
        return path.read_text().strip()
    value = f"cstrack:{secrets.token_urlsafe(24)}"
    _write_private(path, (value + "\n").encode())
    return value


def prefect_server_env(auth: str) -> dict[str, str]:
    return {"PREFECT_SERVER_API_AUTH_STRING": auth}


def prefect_client_env(auth: str) -> dict[str, str]:
    return {"PREFECT_API_AUTH_STRING": auth}
