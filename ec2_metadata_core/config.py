"""Client settings, resolved the way the AWS SDKs resolve them.

Precedence, highest first: explicit arguments, environment variables
(``AWS_EC2_METADATA_*``, ``AWS_METADATA_SERVICE_*``), the active profile of the
shared config file (``~/.aws/config`` or ``AWS_CONFIG_FILE``), then defaults.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, NamedTuple, Optional

from .errors import ConfigError

IPV4_ENDPOINT = "http://169.254.169.254"
IPV6_ENDPOINT = "http://[fd00:ec2::254]"
MAX_TOKEN_TTL = 21600
DEFAULT_TIMEOUT = 1.0
# botocore defaults to one attempt; IMDS drops packets when throttled and AWS
# asks clients to retry, so we try three times unless told otherwise.
DEFAULT_ATTEMPTS = 3
# IMDS allows 1024 packets per second per interface. A full gather is about
# a hundred requests (some 500 packets) whatever the concurrency, so sixteen
# in flight hides round trips without nearing the limit.
DEFAULT_MAX_CONCURRENCY = 16

# setting name -> (environment variable, shared-config key)
_SOURCES = {
    "endpoint": ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "ec2_metadata_service_endpoint"),
    "endpoint_mode": (
        "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
        "ec2_metadata_service_endpoint_mode",
    ),
    "disabled": ("AWS_EC2_METADATA_DISABLED", None),
    "v1_disabled": ("AWS_EC2_METADATA_V1_DISABLED", "ec2_metadata_v1_disabled"),
    "timeout": ("AWS_METADATA_SERVICE_TIMEOUT", "metadata_service_timeout"),
    "attempts": ("AWS_METADATA_SERVICE_NUM_ATTEMPTS", "metadata_service_num_attempts"),
}


# The settings a caller may give, each with what it is: the one list every face
# reads (the CLI's and the faces' option specs pass their values through
# ``Settings.from_mapping`` without naming them again). ``None`` means unset.
OPTIONS: Mapping[str, str] = {
    "endpoint": "IMDS base URL, e.g. http://169.254.169.254",
    "endpoint_mode": "IPv4 or IPv6: which of the two IMDS addresses",
    "timeout": "seconds per attempt",
    "attempts": "attempts per request",
    "disabled": "refuse every request (AWS_EC2_METADATA_DISABLED)",
    "allow_imdsv1": "fall back to IMDSv1 when the token request is refused",
    "token_ttl": "lifetime in seconds asked for the session token",
    "max_concurrency": "requests in flight at once",
    "deadline": "seconds one whole read (a gather) may take, retries and waits included "
    "(default: 4 x attempts x (timeout + 1))",
}


def settings_in(mapping: Mapping[str, Any]) -> Dict[str, Any]:
    """The entries of a face's options that are settings (``OPTIONS``), the rest left out."""
    return {name: value for name, value in mapping.items() if name in OPTIONS}


class Settings(NamedTuple):
    """Everything the client needs to know before its first request."""

    endpoint: str = IPV4_ENDPOINT
    timeout: float = DEFAULT_TIMEOUT
    attempts: int = DEFAULT_ATTEMPTS
    disabled: bool = False
    allow_imdsv1: bool = False
    token_ttl: int = MAX_TOKEN_TTL
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    deadline: Optional[float] = None  # None: derived from timeout and attempts (client.py)

    @classmethod
    def from_mapping(
        cls, options: Mapping[str, Any], environ: Optional[Mapping[str, str]] = None
    ) -> Settings:
        """Settings from a mapping of ``OPTIONS`` (unset: ``None`` or absent), as ``resolve``.

        A key that is not a setting raises a one-line ``ConfigError`` naming it.
        """
        unknown = sorted(str(key) for key in options if key not in OPTIONS)
        if unknown:
            raise ConfigError(
                "{} is not a setting (known: {})".format(unknown[0], ", ".join(OPTIONS))
            )
        return resolve(environ=environ, **options)

    def for_probe(self, timeout: float) -> Settings:
        """These settings for a token request that only asks "is an IMDS here?": one short try."""
        return self._replace(timeout=timeout, attempts=1, deadline=None)


class _Profile(NamedTuple):
    """The active profile's section of the shared config file, and where it is (for errors)."""

    values: Dict[str, str]
    where: str


def _active_profile(environ: Mapping[str, str]) -> str:
    return environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE") or "default"


def _read_ini(path: str) -> Any:
    """``path`` parsed (``None`` if it is not a readable file); a malformed one is a ConfigError.

    As botocore: a file that cannot be parsed fails every setting (the
    endpoint it configures must not be dropped in silence); one that cannot
    be read (permissions) is skipped.
    """
    if not os.path.isfile(path):
        return None
    import configparser  # here, not at the top: most instances have no such file

    parser = configparser.RawConfigParser()
    try:
        with open(path, encoding="utf-8") as stream:
            parser.read_file(stream)
    except OSError:
        return None
    except configparser.Error as exc:
        detail = " ".join(str(getattr(exc, "message", exc)).split())
        raise ConfigError("cannot parse the AWS config file {}: {}".format(path, detail)) from None
    except UnicodeDecodeError:
        raise ConfigError("cannot parse the AWS config file {}: not UTF-8".format(path)) from None
    return parser


def _shared_config(environ: Mapping[str, str]) -> _Profile:
    """The active profile's section of the shared AWS config file (empty if none).

    ``[default]`` or ``[profile default]`` is the default profile, as botocore
    reads them. A profile named by ``AWS_PROFILE`` that neither the config nor
    the credentials file holds is a ConfigError, as it is for the SDKs.
    """
    home = os.path.expanduser("~")
    path = environ.get("AWS_CONFIG_FILE") or os.path.join(home, ".aws", "config")
    profile = _active_profile(environ)
    where = "profile {} of {}".format(profile, path)
    parser = _read_ini(path)
    if parser is not None:
        found = [
            section
            for section in parser.sections()
            if section.split() == ["profile", profile]
            or (profile == "default" and section == "default")
        ]
        if found:  # as botocore: the last of them in the file wins
            return _Profile(dict(parser.items(found[-1])), where)
    if profile != "default":
        credentials_path = environ.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join(
            home, ".aws", "credentials"
        )
        try:
            credentials = _read_ini(credentials_path)
        except ConfigError:
            credentials = None  # the credentials file's own errors are the SDKs' to report
        if credentials is None or not credentials.has_section(profile):
            variable = "AWS_PROFILE" if environ.get("AWS_PROFILE") else "AWS_DEFAULT_PROFILE"
            raise ConfigError(
                "{} names the profile {!r}, which is in neither {} nor {}".format(
                    variable, profile, path, credentials_path
                )
            )
    return _Profile({}, where)


def parse_bool(name: str, value: Any) -> bool:
    """A setting's truth value, from a bool or its usual spellings; ``name`` goes in errors."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ConfigError("{} must be true or false, not {!r}".format(name, value))


def parse_number(name: str, value: Any, kind: type, low: float, high: float) -> Any:
    """A setting as ``kind`` (int or float) within ``low..high``; ``name`` goes in errors."""
    try:
        if isinstance(value, bool):
            raise ValueError  # True is not a number of seconds or attempts
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError  # 2.7 attempts is a mistake, not 2
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(
            "{} must be a {} number, not {!r}".format(name, kind.__name__, value)
        ) from None
    if not low <= number <= high:
        raise ConfigError("{} must be between {} and {}, not {}".format(name, low, high, number))
    return number


class Endpoint(NamedTuple):
    """A base URL taken apart: what a transport connects to."""

    https: bool
    host: str  # an IPv6 address without its brackets
    port: int  # 80 or 443 when the URL names none

    def where(self) -> str:
        """``host:port``, as messages name the endpoint (``[fd00:ec2::254]:80``)."""
        return "{}:{}".format(self._bracketed(), self.port)

    def host_header(self) -> str:
        """The ``Host`` header: the host, and the port unless it is the scheme's own."""
        if self.port == (443 if self.https else 80):
            return self._bracketed()
        return "{}:{}".format(self._bracketed(), self.port)

    def _bracketed(self) -> str:
        return "[{}]".format(self.host) if ":" in self.host else self.host


def split_endpoint(url: str) -> Endpoint:
    """``url`` taken apart; ValueError unless it is a base URL such as http://169.254.169.254.

    http or https, a host, an optional port, no path, query or fragment (the
    client adds ``/latest/...``); a trailing ``/`` is allowed.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url.rstrip("/"))
    port = parts.port  # ValueError for a port that is not a number in 0..65535
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or port == 0
        or parts.path
        or parts.query
        or parts.fragment
    ):
        raise ValueError("not a base URL: {!r}".format(url))
    https = parts.scheme == "https"
    return Endpoint(https, parts.hostname, port or (443 if https else 80))


def _parse_endpoint(name: str, value: str) -> str:
    text = str(value).strip().rstrip("/")
    try:
        split_endpoint(text)
    except ValueError:
        raise ConfigError(
            "{} must be a base URL such as http://169.254.169.254, not {!r}".format(name, value)
        ) from None
    return text


def resolve(
    endpoint: Optional[str] = None,
    endpoint_mode: Optional[str] = None,
    timeout: Optional[float] = None,
    attempts: Optional[int] = None,
    disabled: Optional[bool] = None,
    allow_imdsv1: Optional[bool] = None,
    token_ttl: Optional[int] = None,
    max_concurrency: Optional[int] = None,
    deadline: Optional[float] = None,
    environ: Optional[Mapping[str, str]] = None,
) -> Settings:
    """Merge arguments, environment and shared config into validated ``Settings``.

    Raises ``ConfigError`` with the offending setting's name on bad input.
    """
    env = os.environ if environ is None else environ
    shared: Optional[_Profile] = None

    def pick(key: str, given: Any) -> tuple[str, Any]:
        """(the name to put in an error, the raw value) of one setting; ``None``: unset."""
        nonlocal shared
        env_name, config_key = _SOURCES[key]
        if given is not None:
            return key, given
        if env.get(env_name, "") != "":
            return env_name, env[env_name]
        if config_key is not None:
            if shared is None:
                shared = _shared_config(env)
            if config_key in shared.values:
                return "{} ({})".format(config_key, shared.where), shared.values[config_key]
        return key, None

    # The SDKs let an endpoint beat a mode from any source; an explicit
    # endpoint_mode argument still beats an endpoint from the environment.
    # A mode is checked wherever it comes from, used or not: a typo must not
    # wait for the day the endpoint setting goes away.
    if endpoint is not None and endpoint_mode is not None:
        raise ConfigError(
            "endpoint and endpoint_mode (--endpoint and --ipv6) were both given: "
            "the endpoint is the whole URL, give one of them"
        )
    mode_name, mode = pick("endpoint_mode", endpoint_mode)
    mode_text = "ipv4" if mode is None else str(mode).strip().lower()
    if mode_text not in ("ipv4", "ipv6"):
        raise ConfigError("{} must be IPv4 or IPv6, not {!r}".format(mode_name, mode))
    name, raw = pick("endpoint", endpoint)
    if raw is not None and endpoint_mode is None:
        resolved_endpoint = _parse_endpoint(name, raw)
    else:
        resolved_endpoint = IPV6_ENDPOINT if mode_text == "ipv6" else IPV4_ENDPOINT

    name, raw = pick("timeout", timeout)
    resolved_timeout = (
        DEFAULT_TIMEOUT if raw is None else parse_number(name, raw, float, 0.001, 3600)
    )
    name, raw = pick("attempts", attempts)
    resolved_attempts = DEFAULT_ATTEMPTS if raw is None else parse_number(name, raw, int, 1, 100)
    name, raw = pick("disabled", disabled)
    resolved_disabled = False if raw is None else parse_bool(name, raw)
    if allow_imdsv1 is not None:
        resolved_v1 = parse_bool("allow_imdsv1", allow_imdsv1)
    else:
        # Fallback to IMDSv1 is opt-in: only an explicit "false" here allows it.
        name, raw = pick("v1_disabled", None)
        resolved_v1 = raw is not None and not parse_bool(name, raw)
    resolved_ttl = (
        MAX_TOKEN_TTL
        if token_ttl is None
        else parse_number("token_ttl", token_ttl, int, 1, MAX_TOKEN_TTL)
    )
    resolved_concurrency = (
        DEFAULT_MAX_CONCURRENCY
        if max_concurrency is None
        else parse_number("max_concurrency", max_concurrency, int, 1, 64)
    )
    resolved_deadline = (
        None if deadline is None else parse_number("deadline", deadline, float, 0.001, 86400)
    )
    return Settings(
        endpoint=resolved_endpoint,
        timeout=resolved_timeout,
        attempts=resolved_attempts,
        disabled=resolved_disabled,
        allow_imdsv1=resolved_v1,
        token_ttl=resolved_ttl,
        max_concurrency=resolved_concurrency,
        deadline=resolved_deadline,
    )
