"""A throwaway certificate authority for the emulator's HTTPS: the server cert and client certs.

Client certificates carry the user in the subject CN and the groups in O, as kube-apiserver reads them.
Everything is made in memory and returned as PEM bytes; the caller decides where files go.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=2)


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class CertificateAuthority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256 is fast to generate and accepted by Go's TLS stack (kubectl) and Python's ssl module.
    return ec.generate_private_key(ec.SECP256R1())


def make_ca(now: dt.datetime, common_name: str = "kdebug-emulator-ca") -> CertificateAuthority:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(cert=cert, key=key)


def _leaf(
    ca: CertificateAuthority,
    subject: x509.Name,
    now: dt.datetime,
    usage: ExtendedKeyUsageOID,
    san: x509.SubjectAlternativeName | None = None,
) -> KeyPair:
    key = _new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def make_server_cert(ca: CertificateAuthority, now: dt.datetime) -> KeyPair:
    """A serving cert valid for 127.0.0.1 and localhost (kubectl checks the IP SAN)."""
    san = x509.SubjectAlternativeName(
        [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    )
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kdebug-emulator")])
    return _leaf(ca, subject, now, ExtendedKeyUsageOID.SERVER_AUTH, san)


def make_client_cert(
    ca: CertificateAuthority, user: str, groups: tuple[str, ...] | list[str], now: dt.datetime
) -> KeyPair:
    """A client cert: CN is the user name, one O per group, as kube-apiserver maps them."""
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
    return _leaf(ca, x509.Name(attributes), now, ExtendedKeyUsageOID.CLIENT_AUTH)


def user_from_peercert(peercert: dict | None) -> tuple[str, list[str]] | None:
    """(user, groups) from Python's decoded peer certificate (`ssl.SSLSocket.getpeercert()`)."""
    if not peercert:
        return None
    user = ""
    groups: list[str] = []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                user = value
            elif key == "organizationName":
                groups.append(value)
    return (user, groups) if user else None
