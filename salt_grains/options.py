"""The ``ec2_metadata:`` section of the minion config, validated.

Connection settings left unset (``None``) are resolved by the core the way the
AWS SDKs do: ``AWS_EC2_METADATA_*`` / ``AWS_METADATA_SERVICE_*`` environment
variables of the minion process, then ``~/.aws/config``, then the defaults.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, NamedTuple, Optional

from ec2_metadata_core import config
from ec2_metadata_core.errors import ConfigError

SECTION = "ec2_metadata"
# The token request that decides "on EC2 or not": one attempt this short keeps
# a minion off EC2 within half a second; on EC2 IMDS answers in about a millisecond.
DEFAULT_PROBE_TIMEOUT = 0.2
# How long "not on EC2" is remembered in the minion cachedir.
DEFAULT_NEGATIVE_CACHE_SECONDS = 3600.0


class Options(NamedTuple):
    enabled: bool = True
    endpoint: Optional[str] = None
    endpoint_mode: Optional[str] = None
    timeout: Optional[float] = None
    attempts: Optional[int] = None
    allow_imdsv1: Optional[bool] = None
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT
    negative_cache_seconds: float = DEFAULT_NEGATIVE_CACHE_SECONDS
    include_secrets: bool = False
    include_user_data: bool = False


_BOOLS = ("enabled", "include_secrets", "include_user_data")


def _seconds(name: str, value: Any, low: float, high: float) -> float:
    number: float = config.parse_number("{}.{}".format(SECTION, name), value, float, low, high)
    return number


def from_minion_opts(opts: Mapping[str, Any]) -> Options:
    """Options from the minion's ``ec2_metadata:`` section; ``ConfigError`` on bad input."""
    section = opts.get(SECTION)
    if section is None:
        return Options()
    if not isinstance(section, Mapping):
        raise ConfigError(
            "{} must be a mapping of options, not {}".format(SECTION, type(section).__name__)
        )
    unknown = sorted(str(key) for key in section if key not in Options._fields)
    if unknown:
        raise ConfigError(
            "{}.{} is not an option (known: {})".format(
                SECTION, unknown[0], ", ".join(Options._fields)
            )
        )
    values: Dict[str, Any] = {}
    for name, value in section.items():
        if value is None:
            continue  # "unset": the default, or the AWS environment for connection settings
        if name in _BOOLS:
            values[name] = config.parse_bool("{}.{}".format(SECTION, name), value)
        elif name == "probe_timeout":
            values[name] = _seconds(name, value, 0.001, 60.0)
        elif name == "negative_cache_seconds":
            values[name] = _seconds(name, value, 0.0, 30 * 86400.0)
        else:
            assert name in config.OPTIONS  # the core validates settings
            values[name] = value
    return Options(**values)


def connection_settings(options: Options) -> config.Settings:
    """The core's settings: these options, else the AWS environment and config file."""
    return config.Settings.from_mapping(config.settings_in(options._asdict()))
