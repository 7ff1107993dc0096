"""Verify an instance identity document against AWS's signatures.

Whatever answers at the metadata address, or whatever a host sends a master,
may lie; the identity document is the one thing in IMDS that AWS signs. This
module checks those signatures with AWS's public certificates (bundled, per
region, in ``aws_certificates.py``, which says where they came from) and with
any extra certificates the caller trusts (the
simulator's, a test CA's). It returns a ``VerifiedIdentity`` or raises
``IdentityVerificationError`` with a one-line reason: nothing is half-trusted.

Two signatures are understood:

* ``signature``: base64 RSA PKCS#1 v1.5 over SHA-256 of the document bytes,
  checked with the region's "RSA" certificate;
* ``rsa2048``: a PKCS#7 SignedData (RSA-2048, SHA-256) that carries the
  document, checked with the region's "RSA-2048" certificate. Its signed
  attributes are verified, and their messageDigest must be the SHA-256 of the
  document: a SignedData over other content never verifies this document.

The certificate is chosen by the document's ``region``; a region the bundle
does not list is refused, never guessed. Only the certificate's public key is
used: like Vault's and SPIRE's AWS methods, expiry (``notAfter``) of AWS's
certificates is not enforced, because AWS keeps signing with keys whose
published certificates have lapsed. Certificates a PKCS#7 structure carries
are ignored: trust comes from the bundle and the caller only.

``cryptography`` (and ``asn1crypto`` for PKCS#7) are the ``[identity]`` extra;
they load on first use so that the plain client stays standard-library only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from .aws_certificates import REGIONS
from .errors import IdentityVerificationError

if TYPE_CHECKING:  # pragma: no cover
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.x509 import Certificate

KINDS = ("signature", "rsa2048")
# Bounds on untrusted input: AWS's document is ~500 bytes, its rsa2048 ~2.5 KiB.
MAX_DOCUMENT_BYTES = 16 * 1024
MAX_SIGNATURE_BYTES = 16 * 1024
_CERT_KIND = {"signature": "rsa", "rsa2048": "rsa2048"}
_B64 = re.compile(rb"^[A-Za-z0-9+/]*={0,2}$")
_PEM_LINE = re.compile(rb"^-----(BEGIN|END) [A-Z0-9 ]+-----$")
_OID_DATA = "1.2.840.113549.1.7.1"
_OID_SIGNED_DATA = "1.2.840.113549.1.7.2"

TrustSource = Union[str, bytes, "os.PathLike[str]", "Certificate", "Candidate"]


class Candidate:
    """A public key that may verify a signature, and the name it is reported by."""

    __slots__ = ("key", "name")

    def __init__(self, name: str, key: RSAPublicKey) -> None:
        self.name = name
        self.key = key


class VerifiedIdentity:
    """An identity document whose signature(s) verified, parsed.

    ``document`` is the parsed JSON; ``raw`` the exact bytes that were signed;
    ``verified`` maps each signature that was checked (``signature``,
    ``rsa2048``) to the certificate that verified it (``aws:<region>:rsa``,
    ``aws:<region>:rsa2048`` or ``trusted:<sha256 fingerprint>``).
    """

    __slots__ = ("document", "raw", "verified")

    def __init__(self, document: Dict[str, Any], raw: bytes, verified: Dict[str, str]) -> None:
        self.document = document
        self.raw = raw
        self.verified = verified

    def _text(self, key: str) -> str:
        value = self.document.get(key)
        return value if isinstance(value, str) else ""

    @property
    def account_id(self) -> str:
        return self._text("accountId")

    @property
    def region(self) -> str:
        return self._text("region")

    @property
    def availability_zone(self) -> str:
        return self._text("availabilityZone")

    @property
    def instance_id(self) -> str:
        return self._text("instanceId")

    @property
    def image_id(self) -> str:
        return self._text("imageId")

    @property
    def pending_time(self) -> str:
        return self._text("pendingTime")

    def as_dict(self) -> Dict[str, Any]:
        """What the CLI prints and the Ansible filter returns."""
        return {"verified": dict(self.verified), "document": dict(self.document)}

    def __repr__(self) -> str:
        return "<VerifiedIdentity {} in {} by {}>".format(
            self.instance_id or "?", self.region or "?", ", ".join(sorted(self.verified))
        )


def _crypto() -> Any:
    try:
        from cryptography import x509
    except ImportError:
        raise IdentityVerificationError(
            "verifying identity documents needs the 'cryptography' package: "
            "pip install 'ec2-metadata-core[identity]'"
        ) from None
    return x509


_BUNDLE: Dict[str, Dict[str, str]] = REGIONS


def bundled_regions() -> Dict[str, Dict[str, str]]:
    """Region code -> {"name", "rsa", "rsa2048"} (PEM text): AWS's certificates."""
    return _BUNDLE


def _fingerprint(cert: Certificate) -> str:
    from cryptography.hazmat.primitives import hashes

    return cert.fingerprint(hashes.SHA256()).hex()


def _rsa_key(cert: Certificate, what: str) -> RSAPublicKey:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise IdentityVerificationError("{}: not an RSA certificate".format(what))
    return key


def load_trusted(sources: Iterable[TrustSource]) -> List[Candidate]:
    """Load extra trusted certificates: PEM text or bytes, a file path, a Certificate."""
    _crypto()
    from cryptography import x509

    out: List[Candidate] = []
    for source in sources:
        if isinstance(source, Candidate):  # loaded before (a long-lived policy)
            out.append(source)
            continue
        if isinstance(source, x509.Certificate):
            certs = [source]
            what = "trusted certificate"
        else:
            if isinstance(source, bytes):
                data, what = source, "trusted certificate"
            elif isinstance(source, str) and "-----BEGIN" in source:
                data, what = source.encode("ascii", "replace"), "trusted certificate"
            else:
                what = os.fspath(source)
                try:
                    with open(what, "rb") as handle:
                        data = handle.read(1024 * 1024)
                except OSError as exc:
                    raise IdentityVerificationError(
                        "{}: cannot read certificate: {}".format(what, exc.strerror or exc)
                    ) from None
            try:
                certs = x509.load_pem_x509_certificates(data)
            except ValueError:
                raise IdentityVerificationError("{}: not a PEM certificate".format(what)) from None
        for cert in certs:
            out.append(Candidate("trusted:" + _fingerprint(cert), _rsa_key(cert, what)))
    return out


def _aws_candidate(region: str, kind: str) -> Candidate:
    x509 = _crypto()
    entry = bundled_regions()[region]
    cert_kind = _CERT_KIND[kind]
    cert = x509.load_pem_x509_certificate(entry[cert_kind].encode("ascii"))
    return Candidate("aws:{}:{}".format(region, cert_kind), _rsa_key(cert, region))


def _as_bytes(value: Union[str, bytes], what: str, limit: int) -> bytes:
    if isinstance(value, str):
        try:
            value = value.encode("utf-8")
        except UnicodeEncodeError:
            raise IdentityVerificationError("malformed {}: not UTF-8 text".format(what)) from None
    if len(value) > limit:
        raise IdentityVerificationError("malformed {}: larger than {} bytes".format(what, limit))
    return value


def _b64decode(text: Union[str, bytes], what: str) -> bytes:
    raw = _as_bytes(text, what, MAX_SIGNATURE_BYTES)
    lines = [line.strip() for line in raw.splitlines()]
    body = b"".join(line for line in lines if line and not _PEM_LINE.match(line))
    if not body or not _B64.match(body) or len(body) % 4:
        raise IdentityVerificationError("malformed {}: not base64".format(what))
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise IdentityVerificationError("malformed {}: not base64".format(what)) from None


def parse_document(raw: bytes) -> Dict[str, Any]:
    """The document as a JSON object with a string ``region``, or a one-line error."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise IdentityVerificationError("malformed document: not JSON") from None
    if not isinstance(document, dict):
        raise IdentityVerificationError("malformed document: not a JSON object")
    region = document.get("region")
    if not isinstance(region, str) or not region:
        raise IdentityVerificationError("malformed document: no region")
    return document


def _verify_rsa(candidates: Sequence[Candidate], signature: bytes, signed: bytes) -> Optional[str]:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    for candidate in candidates:
        try:
            candidate.key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        return candidate.name
    return None


def _signed_data(der: bytes) -> Tuple[bytes, bytes, bytes]:
    """(content, signed attributes as DER SET, signature) of a one-signer SignedData."""
    try:
        from asn1crypto import cms  # type: ignore[import-untyped]
    except ImportError:
        raise IdentityVerificationError(
            "verifying rsa2048 signatures needs the 'asn1crypto' package: "
            "pip install 'ec2-metadata-core[identity]'"
        ) from None
    try:
        info = cms.ContentInfo.load(der, strict=True)
        if info["content_type"].dotted != _OID_SIGNED_DATA:
            raise IdentityVerificationError("malformed rsa2048: not a PKCS#7 SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].dotted != _OID_DATA or encap["content"].native is None:
            raise IdentityVerificationError("malformed rsa2048: it carries no document")
        content = encap["content"].native
        signers = signed["signer_infos"]
        if len(signers) != 1:
            raise IdentityVerificationError("malformed rsa2048: expected exactly one signer")
        signer = signers[0]
        if signer["digest_algorithm"]["algorithm"].native != "sha256":
            raise IdentityVerificationError("malformed rsa2048: digest is not SHA-256")
        if signer["signature_algorithm"].signature_algo != "rsassa_pkcs1v15":
            raise IdentityVerificationError("malformed rsa2048: signature is not RSA PKCS#1 v1.5")
        attrs = signer["signed_attrs"]
        if not attrs:
            raise IdentityVerificationError("malformed rsa2048: no signed attributes")
        digests = [a["values"] for a in attrs if a["type"].native == "message_digest"]
        types = [a["values"] for a in attrs if a["type"].native == "content_type"]
        if len(digests) != 1 or len(digests[0]) != 1 or len(types) != 1 or len(types[0]) != 1:
            raise IdentityVerificationError("malformed rsa2048: bad signed attributes")
        if types[0][0].dotted != _OID_DATA:
            raise IdentityVerificationError("malformed rsa2048: signed content type is not data")
        digest = digests[0][0].native
        # The signature covers the attributes DER-encoded as a SET OF (tag 0x31),
        # not with the [0] IMPLICIT tag they carry inside SignerInfo.
        attrs_der = b"\x31" + attrs.dump()[1:]
        signature = signer["signature"].native
    except IdentityVerificationError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
        raise IdentityVerificationError("malformed rsa2048: not a PKCS#7 SignedData") from None
    if not isinstance(content, bytes) or not isinstance(digest, bytes):
        raise IdentityVerificationError("malformed rsa2048: not a PKCS#7 SignedData")
    if hashlib.sha256(content).digest() != digest:
        raise IdentityVerificationError(
            "bad rsa2048 signature: its message digest is not the document's"
        )
    return content, attrs_der, signature


def verify_identity(
    document: Union[str, bytes, None] = None,
    signature: Union[str, bytes, None] = None,
    rsa2048: Union[str, bytes, None] = None,
    trusted: Iterable[TrustSource] = (),
    aws: bool = True,
) -> VerifiedIdentity:
    """Verify ``document`` with every signature given; return it parsed, or raise.

    ``signature`` and ``rsa2048`` are the texts IMDS serves at
    ``dynamic/instance-identity/signature`` and ``.../rsa2048`` (PEM armour is
    accepted too). ``document`` may be left out when ``rsa2048`` is given: the
    SignedData carries it. Every signature given must verify (a proof with one
    good and one bad signature is refused). ``trusted`` adds certificates (PEM
    text, file paths, ``cryptography`` certificates) tried after the region's
    AWS certificate; ``aws=False`` trusts only those.
    """
    if signature is None and rsa2048 is None:
        raise IdentityVerificationError("no signature given (signature or rsa2048)")
    _crypto()
    extra = load_trusted(trusted)
    if not aws and not extra:
        raise IdentityVerificationError("no certificate to verify with (aws=False, no trusted)")

    pkcs7: Optional[Tuple[bytes, bytes, bytes]] = None
    if rsa2048 is not None:
        pkcs7 = _signed_data(_b64decode(rsa2048, "rsa2048"))
    if document is None:
        if pkcs7 is None:  # pragma: no cover - excluded by the first check
            raise IdentityVerificationError("no document given")
        raw = pkcs7[0]
    else:
        raw = _as_bytes(document, "document", MAX_DOCUMENT_BYTES)
        if pkcs7 is not None and pkcs7[0] != raw:
            raise IdentityVerificationError("bad rsa2048 signature: it signs another document")
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise IdentityVerificationError(
            "malformed document: larger than {} bytes".format(MAX_DOCUMENT_BYTES)
        )
    parsed = parse_document(raw)
    region = parsed["region"]
    if region not in bundled_regions():
        raise IdentityVerificationError(
            "unknown region {!r}: no AWS certificate for it".format(region[:64])
        )

    verified: Dict[str, str] = {}
    if signature is not None:
        blob = _b64decode(signature, "signature")
        candidates = ([_aws_candidate(region, "signature")] if aws else []) + extra
        name = _verify_rsa(candidates, blob, raw)
        if name is None:
            raise IdentityVerificationError(
                "bad signature: it does not verify with the certificate for {}".format(region)
            )
        verified["signature"] = name
    if pkcs7 is not None:
        candidates = ([_aws_candidate(region, "rsa2048")] if aws else []) + extra
        name = _verify_rsa(candidates, pkcs7[2], pkcs7[1])
        if name is None:
            raise IdentityVerificationError(
                "bad rsa2048 signature: it does not verify with the certificate for {}".format(
                    region
                )
            )
        verified["rsa2048"] = name
    return VerifiedIdentity(parsed, raw, verified)


def verify_mapping(
    proof: Mapping[str, Any], trusted: Iterable[TrustSource] = (), aws: bool = True
) -> VerifiedIdentity:
    """``verify_identity`` over a mapping with ``document``/``signature``/``rsa2048`` keys."""
    values: Dict[str, Union[str, bytes, None]] = {}
    for key in ("document", *KINDS):
        value = proof.get(key)
        if value is not None and not isinstance(value, (str, bytes)):
            raise IdentityVerificationError("malformed {}: not text".format(key))
        values[key] = value or None
    return verify_identity(
        values["document"], values["signature"], values["rsa2048"], trusted=trusted, aws=aws
    )
