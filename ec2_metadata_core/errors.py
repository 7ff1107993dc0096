"""The package's exceptions: one small hierarchy, one-line messages, no secrets.

Callers tell "absent" from "failed" by type: an absent path is ``None`` (or
``[]``) from the client, never an exception; every exception here means the
value could not be read. Messages name the path, never the token or a body,
and whatever in them came from the endpoint (a listed name, a path) is
shown with its control characters escaped (``printable``): an error line
lands on a terminal or in a log, where an escape sequence would act.
"""

from __future__ import annotations

from typing import Optional

HOP_LIMIT_HINT = (
    "if this runs in a container, raise the instance's hop limit: "
    "aws ec2 modify-instance-metadata-options --instance-id <id> "
    "--http-put-response-hop-limit 2"
)


def printable(text: str) -> str:
    """``text`` with every character that is not printable (but the space) escaped as in repr.

    Control characters (C0, DEL, C1: terminal escape sequences), line and
    paragraph separators, bidirectional and other format characters.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() or char == " " else repr(char)[1:-1] for char in text)


class IMDSError(Exception):
    """Base of every error this package raises; its message is escaped (``printable``)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(printable(arg) if isinstance(arg, str) else arg for arg in args))


class ConfigError(IMDSError, ValueError):
    """A setting (argument, environment variable, config file) is invalid."""


class MetadataDisabledError(IMDSError):
    """IMDS calls are turned off by AWS_EC2_METADATA_DISABLED or ``disabled=True``."""

    def __init__(self) -> None:
        super().__init__(
            "instance metadata calls are disabled (AWS_EC2_METADATA_DISABLED or disabled=True)"
        )


class IMDSUnavailableError(IMDSError):
    """The endpoint could not be reached or did not answer in time (after retries)."""


class IMDSTimeoutError(IMDSUnavailableError):
    """A request timed out on every attempt."""


class TokenError(IMDSError):
    """The IMDSv2 session token could not be obtained."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


class TokenTimeoutError(TokenError, IMDSTimeoutError):
    """The token PUT timed out: off EC2, or in a container past the hop limit."""


class IMDSHTTPError(IMDSError):
    """IMDS answered a GET with a status that is neither success nor 404."""

    def __init__(self, path: str, status: int, reason: str = "") -> None:
        detail = " {}".format(reason) if reason else ""
        super().__init__("IMDS answered {}{} for {}".format(status, detail, path))
        self.path = path
        self.status = status


class PathNotFoundError(IMDSHTTPError, LookupError):
    """IMDS answered 404 for a value it always has on EC2."""

    def __init__(self, path: str) -> None:
        # The model's paths are under /latest/; name them as the other HTTP errors do.
        super().__init__(path if path.startswith("/") else "/latest/" + path, 404, "(not found)")


class MalformedResponseError(IMDSError, ValueError):
    """A value IMDS returned does not parse as the documented type."""

    def __init__(self, path: str, expected: str) -> None:
        super().__init__("IMDS returned malformed {} for {}".format(expected, path))
        self.path = path


class LimitError(IMDSError, ValueError):
    """An answer breaks one of the bounds on what IMDS sends (``bounds``): too much, too deep."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__("IMDS sent too much for {}: {}".format(path, what))
        self.path = path


class FormatError(IMDSError, ValueError):
    """A value holds what the output format cannot carry (a NUL in a shell variable)."""


class TagsNotEnabledError(IMDSError, KeyError):
    """Instance tags were read but tags in instance metadata are turned off."""

    def __init__(self) -> None:
        super().__init__(
            "instance tags are not available in instance metadata: enable them with "
            "aws ec2 modify-instance-metadata-options --instance-id <id> "
            "--instance-metadata-tags enabled"
        )

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class IdentityVerificationError(IMDSError, ValueError):
    """An identity document or its signature did not verify; the message says why."""
