"""The IMDSv2 client: a shared session token, retries, and path reads.

``IMDSClient.get(path)`` returns the body as bytes, ``None`` when IMDS says the
path is absent (404), and raises an ``IMDSError`` when the value could not be
read. One client serves any number of threads with one token.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Optional, Tuple

from . import config
from .errors import (
    HOP_LIMIT_HINT,
    IMDSError,
    IMDSHTTPError,
    IMDSTimeoutError,
    IMDSUnavailableError,
    MetadataDisabledError,
    TokenError,
    TokenTimeoutError,
)
from .transport import RequestsTransport, Response, StdlibTransport, Transport

if TYPE_CHECKING:  # pragma: no cover
    import requests

log = logging.getLogger(__name__)

TOKEN_PATH = "/latest/api/token"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
RETRYABLE_STATUSES = frozenset((429, 500, 502, 503, 504))
# Statuses of the token PUT that mean "this endpoint has no IMDSv2".
NO_V2_STATUSES = frozenset((403, 404, 405))
BACKOFF_BASE = 0.05
BACKOFF_CAP = 1.0


def _backoff(attempt: int) -> float:
    """Full-jitter exponential back-off, as AWS recommends for throttling."""
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt)))


class TokenProvider:
    """Holds one session token; fetches it once however many threads ask.

    The token is renewed shortly before the TTL the service granted runs out,
    and on demand after a 401 (``invalidate``).
    """

    def __init__(self, fetch: Callable[[int], Tuple[str, int]], ttl: int) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._lock = threading.Lock()
        self._token: Optional[str] = None
        self._renew_at = 0.0
        self.fetches = 0

    def __repr__(self) -> str:
        state = "held" if self._token is not None else "none"
        return "TokenProvider(ttl={}, token={})".format(self._ttl, state)

    def get(self) -> str:
        token = self._token
        if token is not None and time.monotonic() < self._renew_at:
            return token
        with self._lock:
            if self._token is not None and time.monotonic() < self._renew_at:
                return self._token
            started = time.monotonic()
            token, granted = self._fetch(self._ttl)
            self.fetches += 1
            lifetime = max(1, min(granted, self._ttl))
            # Renew a tenth of the lifetime early (at most a minute) so a
            # request never leaves with a token about to expire in flight.
            self._renew_at = started + lifetime - min(60.0, lifetime / 10.0)
            self._token = token
            return token

    def invalidate(self, token: Optional[str]) -> None:
        """Forget ``token`` unless another thread already replaced it."""
        with self._lock:
            if token is None or self._token == token:
                self._token = None
                self._renew_at = 0.0

    def clear(self) -> None:
        self.invalidate(None)


class IMDSClient:
    """Reads paths under ``/latest/`` from IMDS, IMDSv2 first.

    Settings come from ``config.resolve`` (arguments win over the AWS
    environment variables and shared config). ``session`` switches the
    transport to that ``requests.Session``.
    """

    def __init__(
        self,
        session: Optional[requests.Session] = None,
        settings: Optional[config.Settings] = None,
        transport: Optional[Transport] = None,
        **overrides: object,
    ) -> None:
        self.settings = settings if settings is not None else config.resolve(**overrides)  # type: ignore[arg-type]
        if transport is None:
            if session is not None:
                transport = RequestsTransport(self.settings.endpoint, session)
            else:
                transport = StdlibTransport(self.settings.endpoint)
        self.transport = transport
        self.tokens = TokenProvider(self._fetch_token, self.settings.token_ttl)
        self._v1 = False  # set once the token PUT proved IMDSv2 absent and v1 is allowed
        self._stats_lock = threading.Lock()
        self.requests = 0

    def __repr__(self) -> str:
        return "IMDSClient(endpoint={!r}, timeout={:g}, attempts={})".format(
            self.settings.endpoint, self.settings.timeout, self.settings.attempts
        )

    # -- the token ---------------------------------------------------------

    def _fetch_token(self, ttl: int) -> Tuple[str, int]:
        try:
            response = self._send("PUT", TOKEN_PATH, {TOKEN_TTL_HEADER: str(ttl)})
        except IMDSTimeoutError:
            raise TokenTimeoutError(
                "IMDS token request to {} timed out after {} attempt(s) of {:g}s: "
                "not on EC2, or {}".format(
                    self.settings.endpoint,
                    self.settings.attempts,
                    self.settings.timeout,
                    HOP_LIMIT_HINT,
                )
            ) from None
        except IMDSHTTPError as exc:
            raise TokenError(
                "IMDS refused the token request with {} after {} attempt(s)".format(
                    exc.status, self.settings.attempts
                ),
                exc.status,
            ) from None
        if response.status == 200:
            token = response.body.decode("ascii", "replace").strip()
            if not token:
                raise TokenError("IMDS answered the token request with an empty token", 200)
            granted = response.headers.get(TOKEN_TTL_HEADER.lower(), "")
            try:
                return token, int(granted)
            except ValueError:
                return token, ttl
        if response.status in NO_V2_STATUSES:
            why = {
                403: "IMDS is turned off for this instance, or the request was forwarded",
                404: "this endpoint does not support IMDSv2",
                405: "this endpoint does not support IMDSv2",
            }[response.status]
            raise TokenError(
                "IMDS refused the token request ({}): {}".format(response.status, why),
                response.status,
            )
        if response.status == 400:
            raise TokenError(
                "IMDS rejected the token request (400): token TTL {} is outside 1..21600".format(
                    ttl
                ),
                400,
            )
        raise TokenError(
            "IMDS answered the token request with {}".format(response.status), response.status
        )

    def _token_headers(self) -> Tuple[Dict[str, str], Optional[str]]:
        if self._v1:
            return {}, None
        try:
            token = self.tokens.get()
        except TokenError as exc:
            if self.settings.allow_imdsv1 and exc.status in NO_V2_STATUSES | {400}:
                log.debug("IMDSv2 unavailable (%s); falling back to IMDSv1 as allowed", exc.status)
                self._v1 = True
                return {}, None
            raise
        return {TOKEN_HEADER: token}, token

    # -- requests ----------------------------------------------------------

    def _send(self, method: str, path: str, headers: Dict[str, str]) -> Response:
        """One request with retries on connection errors, 429 and 5xx.

        Attempts stop at ``settings.attempts`` or when the overall deadline
        (every attempt's timeout plus back-off) has passed.
        """
        if self.settings.disabled:
            raise MetadataDisabledError()
        attempts = self.settings.attempts
        timeout = self.settings.timeout
        deadline = time.monotonic() + attempts * (timeout + BACKOFF_CAP)
        attempt = 0
        while True:
            attempt += 1
            with self._stats_lock:
                self.requests += 1
            error: Optional[IMDSError] = None
            try:
                response = self.transport.request(method, path, headers, timeout)
            except IMDSUnavailableError as exc:
                error = exc
            else:
                if response.status not in RETRYABLE_STATUSES:
                    return response
                error = IMDSHTTPError(path, response.status)
            pause = _backoff(attempt)
            if attempt >= attempts or time.monotonic() + pause >= deadline:
                raise error
            log.debug(
                "retrying %s %s after %s (attempt %d/%d)",
                method,
                path,
                type(error).__name__,
                attempt,
                attempts,
            )
            time.sleep(pause)

    def get(self, path: str) -> Optional[bytes]:
        """The body at ``/latest/<path>``; ``None`` if absent (404).

        A 401 (expired or unknown token) renews the token and retries once.
        """
        url_path = "/latest/" + path
        for renewed in (False, True):
            headers, token = self._token_headers()
            response = self._send("GET", url_path, headers)
            if response.status == 200:
                return response.body
            if response.status == 404:
                return None
            if response.status == 401 and not renewed and token is not None:
                log.debug("IMDS answered 401 for %s; renewing the token", url_path)
                self.tokens.invalidate(token)
                continue
            raise IMDSHTTPError(url_path, response.status)
        raise AssertionError("unreachable")  # pragma: no cover

    def get_text(self, path: str) -> Optional[str]:
        """``get`` decoded as UTF-8 (undecodable bytes replaced)."""
        body = self.get(path)
        return None if body is None else body.decode("utf-8", "replace")

    def get_many(self, paths: Iterable[str]) -> Dict[str, Optional[bytes]]:
        """Read several paths concurrently (``settings.max_concurrency`` in flight).

        Raises the first error met, after every request has finished.
        """
        unique = list(dict.fromkeys(paths))
        if len(unique) <= 1 or self.settings.max_concurrency == 1:
            return {path: self.get(path) for path in unique}
        self.prime_token()
        from concurrent.futures import ThreadPoolExecutor

        workers = min(self.settings.max_concurrency, len(unique))
        with ThreadPoolExecutor(workers, thread_name_prefix="imds") as pool:
            futures = [(path, pool.submit(self.get, path)) for path in unique]
        results: Dict[str, Optional[bytes]] = {}
        for path, future in futures:
            results[path] = future.result()
        return results

    def prime_token(self) -> None:
        """Fetch the token now, so threads fanning out next share it."""
        self._token_headers()

    def clear_token(self) -> None:
        self.tokens.clear()
        self._v1 = False

    def close(self) -> None:
        self.transport.close()
