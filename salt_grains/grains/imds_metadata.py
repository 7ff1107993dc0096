"""Salt 3006's ``metadata`` grain (``meta-data:...``, ``dynamic:...``) for Salt 3008 and later.

Opt in as with 3006: ``metadata_server_grains: True`` in the minion config;
the work lives in ``saltext.imds_ec2.metadata3006``. On a Salt that still has
its own ``salt.grains.metadata`` (3006 and 3007) this module steps aside:
that one already sets these grains.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, Dict, Mapping, Tuple, Union

if TYPE_CHECKING:
    from .. import metadata3006 as _metadata
else:
    from saltext.imds_ec2 import metadata3006 as _metadata

__opts__: Mapping[str, Any]  # injected by the Salt loader
__virtualname__ = "imds_metadata"


def __virtual__() -> Union[str, Tuple[bool, str]]:
    if importlib.util.find_spec("salt.grains.metadata") is not None:
        return False, "this Salt has its own metadata grain (salt.grains.metadata)"
    if not _metadata.opted_in(__opts__):  # noqa: F821 - set by the loader
        return False, "metadata_server_grains is not set"
    return __virtualname__


def metadata() -> Dict[str, Any]:
    """``meta-data``, ``dynamic`` (and ``user-data`` if asked) as Salt 3006 named them."""
    return _metadata.grains(__opts__)  # noqa: F821 - set by the loader after import
