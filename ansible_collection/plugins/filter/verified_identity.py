# Copyright: ec2-metadata-core contributors
# MIT License (see LICENSE in the project repository)

"""imds.ec2.verified_identity: a host's EC2 facts in, its AWS-verified identity out.

Runs on the controller. The facts carry the identity document and its
signatures; the host that gathered them may lie, so the document counts only
if a signature verifies with AWS's certificate for its region (bundled with the
collection) or a certificate given in ``trust``. Otherwise the task fails with
one line. The verification is the core's (module_utils/identity.py, copied from
ec2_metadata_core by the build like the rest of the client).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Union

from ansible.errors import AnsibleFilterError
from ansible.utils.unsafe_proxy import wrap_var
from ansible_collections.imds.ec2.plugins.module_utils.errors import IdentityVerificationError
from ansible_collections.imds.ec2.plugins.module_utils.identity import verify_identity

_FACTS = ("instance_identity_document", "instance_identity_signature", "instance_identity_rsa2048")


def _imds_text(document: Mapping[str, Any]) -> bytes:
    """The document as IMDS prints it (two-space indent, ``" : "``): what ``signature`` signs."""
    return json.dumps(dict(document), indent=2, separators=(",", " : ")).encode("utf-8")


def _text(value: Any, what: str) -> Optional[str]:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise AnsibleFilterError("verified_identity: {} is not text".format(what))
    return str(value)


def verified_identity(
    facts: Mapping[str, Any], trust: Union[str, List[str], None] = None, aws: bool = True
) -> Dict[str, Any]:
    """``{"verified": {kind: certificate}, "document": {...}}`` or a failed task."""
    if not isinstance(facts, Mapping):
        raise AnsibleFilterError("verified_identity: expects a host's ec2 facts (a mapping)")
    trusted = [trust] if isinstance(trust, str) else list(trust or [])
    document = facts.get(_FACTS[0])
    signature = _text(facts.get(_FACTS[1]), _FACTS[1])
    rsa2048 = _text(facts.get(_FACTS[2]), _FACTS[2])
    if document is None:
        raise AnsibleFilterError("verified_identity: the facts hold no instance_identity_document")
    try:
        if rsa2048 is not None:
            # The SignedData carries the document; the facts' copy must be that one.
            verified = verify_identity(None, None, rsa2048, trusted=trusted, aws=aws)
            if signature is not None:  # every signature present must verify
                also = verify_identity(verified.raw, signature, None, trusted=trusted, aws=aws)
                verified.verified.update(also.verified)
        elif signature is not None:
            raw = document.encode("utf-8") if isinstance(document, str) else _imds_text(document)
            verified = verify_identity(raw, signature, None, trusted=trusted, aws=aws)
        else:
            raise IdentityVerificationError("no signature given (signature or rsa2048)")
        gathered = json.loads(document) if isinstance(document, str) else dict(document)
        if gathered != verified.document:
            raise IdentityVerificationError("the facts' document is not the one AWS signed")
    except (IdentityVerificationError, ValueError) as exc:
        raise AnsibleFilterError("verified_identity: {}".format(exc)) from None
    return wrap_var(verified.as_dict())  # type: ignore[no-any-return]


class FilterModule:
    """imds.ec2 filters."""

    def filters(self) -> Dict[str, Any]:
        return {"verified_identity": verified_identity}
