"""``ec2-metadata-core identity``: verify an identity document, print it as JSON.

Without files it verifies this instance's document (read from IMDS with its
``signature`` and ``rsa2048``); with ``--document``/``--signature``/``--rsa2048``
it verifies a document received from elsewhere, as a master or a controller
would. Exit 0 with the verified identity on stdout, or one line and exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING, Dict, Optional, Union

from .errors import ConfigError, IdentityVerificationError
from .output import emit

if TYPE_CHECKING:  # pragma: no cover
    from .model import EC2Metadata

HELP = "verify the signed identity document and print it (JSON)"
DESCRIPTION = (
    "Verify an instance identity document against AWS's certificates for its region "
    "(bundled) and print the verified identity as JSON: which signature verified with "
    "which certificate, and the document. Without --document/--signature/--rsa2048 it "
    "verifies this instance's document, read from IMDS. Needs the [identity] extra."
)
PATHS = {
    "document": "dynamic/instance-identity/document",
    "signature": "dynamic/instance-identity/signature",
    "rsa2048": "dynamic/instance-identity/rsa2048",
}
_READ_LIMIT = 64 * 1024


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--document", metavar="FILE", help="the document, as IMDS served it")
    parser.add_argument("--signature", metavar="FILE", help="its base64 RSA signature")
    parser.add_argument("--rsa2048", metavar="FILE", help="its PKCS#7 rsa2048 signature")
    parser.add_argument(
        "--trust",
        metavar="CERT.pem",
        action="append",
        default=[],
        help="also trust this certificate (repeatable): the simulator's, a test CA's",
    )


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(_READ_LIMIT + 1)
    except OSError as exc:
        raise ConfigError("--{} {}: {}".format(what, path, exc.strerror or exc)) from None
    if len(data) > _READ_LIMIT:
        raise IdentityVerificationError(
            "malformed {}: larger than {} bytes".format(what, _READ_LIMIT)
        )
    return data


def run(metadata: EC2Metadata, args: argparse.Namespace) -> int:
    from . import identity

    given = {name: getattr(args, name) for name in PATHS}
    values: Dict[str, Optional[Union[bytes, str]]] = {}
    if any(given.values()):
        if given["signature"] is None and given["rsa2048"] is None:
            raise ConfigError("--document needs --signature or --rsa2048")
        if given["document"] is None and given["rsa2048"] is None:
            raise ConfigError("--signature needs --document")
        for name, path in given.items():
            values[name] = _read(path, name) if path else None
    else:
        bodies = metadata.client.get_many(PATHS.values())
        values = {name: bodies.get(path) for name, path in PATHS.items()}
        if values["document"] is None:
            raise IdentityVerificationError("this instance serves no identity document")
    for path in args.trust:
        if not os.path.isfile(path):
            raise ConfigError("--trust {}: no such file".format(path))
    verified = identity.verify_identity(
        values["document"], values["signature"], values["rsa2048"], trusted=args.trust
    )
    emit((json.dumps(verified.as_dict(), indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return 0
