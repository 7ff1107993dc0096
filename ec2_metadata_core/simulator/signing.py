"""The simulator signs its identity documents the way AWS does, with a key of its own.

``signature`` is base64 RSA PKCS#1 v1.5 over SHA-256 of the document bytes and
``rsa2048`` a PKCS#7 SignedData (SHA-256, RSA-2048) carrying the document,
both wrapped at 76 columns like IMDS serves them, so
``ec2_metadata_core.identity`` verifies them given the simulator's certificate
(``--trust``): users rehearse verification off EC2. ``pkcs7`` (DSA, SHA-1) is
left as the instance data has it: a placeholder, which nothing verifies.

Signing needs ``cryptography``; without it the simulator serves the data
file's placeholder values, as it did before.
"""

from __future__ import annotations

import base64
import datetime
import threading
from typing import TYPE_CHECKING, Dict, Optional

if TYPE_CHECKING:  # pragma: no cover
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.x509 import Certificate

    from .instance import Directory

SIGNED = ("signature", "rsa2048")


def _wrap(raw: bytes) -> str:
    return base64.encodebytes(raw).decode("ascii").rstrip("\n")


class IdentitySigner:
    """An RSA-2048 key and a self-signed certificate for it."""

    def __init__(self, key: RSAPrivateKey, certificate: Certificate) -> None:
        self.key = key
        self.certificate = certificate
        # document bytes -> its signatures: the PKCS#7 one carries a signing
        # time, and every simulator of a process must serve one instance's
        # document with the same bytes, as the service does.
        self._signed: Dict[bytes, Dict[str, str]] = {}

    @classmethod
    def generate(cls, name: str = "ec2-metadata-core simulator identity") -> IdentitySigner:
        """A fresh key (about 0.1 s) with a certificate valid for ten years."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @property
    def certificate_pem(self) -> str:
        from cryptography.hazmat.primitives import serialization

        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def sign(self, document: bytes) -> Dict[str, str]:
        """``{"signature": ..., "rsa2048": ...}`` for these exact document bytes."""
        done = self._signed.get(document)
        if done is not None:
            return dict(done)
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding
        from cryptography.hazmat.primitives.serialization import pkcs7

        signature = self.key.sign(document, padding.PKCS1v15(), hashes.SHA256())
        signed_data = (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(document)
            .add_signer(self.certificate, self.key, hashes.SHA256())
            .sign(
                serialization.Encoding.DER,
                # Binary: sign the bytes as they are (no MIME line-ending
                # rewrite); NoCerts: AWS's SignedData carries no certificate.
                [pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.NoCerts],
            )
        )
        done = {"signature": _wrap(signature), "rsa2048": _wrap(signed_data)}
        self._signed[document] = done
        return dict(done)


_DEFAULT: Optional[IdentitySigner] = None
_DEFAULT_LOCK = threading.Lock()


def default_signer() -> Optional[IdentitySigner]:
    """The process's shared signer (made on first use), or None without cryptography.

    Shared so that every simulator in one test run or one ``simulate`` process
    signs with the same key: one ``--trust`` certificate covers a fleet.
    """
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            try:
                _DEFAULT = IdentitySigner.generate()
            except ImportError:
                return None
        return _DEFAULT


def sign_tree(root: Directory, signer: Optional[IdentitySigner]) -> None:
    """Replace ``dynamic/instance-identity/{signature,rsa2048}`` with signatures of its document."""
    from .instance import Directory, StoredValue

    if signer is None:
        return
    dynamic = root.entries.get("dynamic")
    if not isinstance(dynamic, Directory):
        return
    identity = dynamic.entries.get("instance-identity")
    if not isinstance(identity, Directory):
        return
    document = identity.entries.get("document")
    if not isinstance(document, StoredValue):
        return
    for name, text in signer.sign(document.body).items():
        identity.entries[name] = StoredValue(text.encode("ascii"))
