"""What counts as a secret in instance metadata: the one definition every face uses.

The snapshot leaves these keys out unless asked, the Ansible action censors a
result that holds them, and the legacy ``ansible_ec2_*`` facts skip the paths.
Kept free of other imports so the collection's action plugin (on the
controller) can load it alone.
"""

from __future__ import annotations

from typing import Any, Mapping

# Snapshot keys that are live credentials.
SECRET_KEYS = frozenset(("iam_security_credentials", "identity_credentials_ec2"))
# The user data: often holds passwords, so also only when asked for.
USER_DATA_KEY = "user_data"
SENSITIVE_KEYS = SECRET_KEYS | frozenset((USER_DATA_KEY,))
# Metadata directories whose entries are credentials (paths under /latest/).
SECRET_DIRS = (
    "meta-data/iam/security-credentials/",
    "meta-data/identity-credentials/ec2/security-credentials/",
)


def is_secret_path(path: str) -> bool:
    """Whether the body at ``path`` (under /latest/) is a credential."""
    return any(path.startswith(top) and len(path) > len(top) for top in SECRET_DIRS)


def holds_sensitive(instance: Mapping[str, Any]) -> bool:
    """Whether a snapshot carries credentials or user data."""
    return any(key in instance for key in SENSITIVE_KEYS)
