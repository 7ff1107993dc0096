"""The IMDSv2 protocol: token, retries, deadline, errors, transports.

Unit tests use ``responses`` with a ``requests.Session`` (the client's own
logic); the session's requests go through the scheduler every read goes
through (``IMDSClient._run``: the queue, token stamping, the congestion
window, retries and their quota), each sent on a worker thread. Integration tests speak real HTTP
to the simulator on loopback with the default standard-library transport.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
import requests
import responses

import ec2_metadata_core.client as client_module
import ec2_metadata_core.tokens as tokens_module
from ec2_metadata_core import (
    EC2Metadata,
    IMDSClient,
    IMDSError,
    IMDSHTTPError,
    IMDSTimeoutError,
    IMDSUnavailableError,
    PathNotFoundError,
    TagsNotEnabledError,
    TokenError,
    TokenTimeoutError,
)
from ec2_metadata_core.pacing import RETRY_QUOTA, RETRY_SHARE, busy_tries
from ec2_metadata_core.simulator import Simulator
from ec2_metadata_core.transport import Job, Response, Transport
from ec2_metadata_core.wire import StdlibTransport

# responses intercepts before any socket; a loopback URL keeps even a
# misconfigured mock on this machine.
URL = "http://127.0.0.1:9"
TOKEN_URL = URL + "/latest/api/token"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


class SkippingClock:
    """The client's clock: real time, plus every pause it took, which is recorded, not slept.

    Real time still runs (the scheduler waits for its worker threads in real
    time), so a recorded pause is the back-off less the moments since it was
    chosen: compare with some tolerance.
    """

    def __init__(self) -> None:
        self.pauses: List[float] = []
        self.skipped = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.skipped

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.skipped += max(0.0, seconds)


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> List[float]:
    """Record back-off pauses instead of sleeping; jitter pinned to its ceiling."""
    clock = SkippingClock()
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    monkeypatch.setattr(client_module, "time", clock)
    monkeypatch.setattr(tokens_module, "time", clock)  # the token's lifetime runs on it too
    return clock.pauses


def add_token(mock: responses.RequestsMock, token: str = "tok-1", ttl: int = 21600) -> None:
    mock.add(responses.PUT, TOKEN_URL, body=token, headers={TTL_HEADER: str(ttl)})


def session_metadata(**kwargs: object) -> Tuple[EC2Metadata, requests.Session]:
    session = requests.Session()
    return EC2Metadata(session, endpoint=URL, **kwargs), session  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- unit: the client's logic through a requests.Session -------------------


def test_session_carries_every_request(mock: responses.RequestsMock) -> None:
    add_token(mock)
    mock.add(responses.GET, URL + "/latest/meta-data/instance-id", body="i-0abc")
    metadata, session = session_metadata()
    assert metadata.instance_id == "i-0abc"
    put, get = mock.calls
    assert put.request.method == "PUT"
    assert put.request.headers[TTL_HEADER] == "21600"
    assert get.request.headers[TOKEN_HEADER] == "tok-1"
    # Unlike the seed, the token is not left in the caller's session headers.
    assert TOKEN_HEADER not in session.headers


def test_clear_all_leaves_the_callers_session_usable(mock: responses.RequestsMock) -> None:
    add_token(mock)
    mock.add(responses.GET, URL + "/latest/meta-data/instance-id", body="i-0abc")
    mock.add(responses.GET, URL + "/elsewhere", body="still open")
    metadata, session = session_metadata()
    assert metadata.instance_id == "i-0abc"
    metadata.clear_all()
    assert session.get(URL + "/elsewhere").text == "still open"
    assert metadata.instance_id == "i-0abc"
    assert [c.request.method for c in mock.calls].count("PUT") == 2


def test_one_token_serves_many_reads(mock: responses.RequestsMock) -> None:
    add_token(mock)
    mock.add(responses.GET, URL + "/latest/meta-data/instance-id", body="i-0abc")
    mock.add(responses.GET, URL + "/latest/meta-data/instance-type", body="m5.large")
    mock.add(responses.GET, URL + "/latest/meta-data/mac", body="02:00:00:00:00:01")
    metadata, _ = session_metadata()
    assert (metadata.instance_id, metadata.instance_type, metadata.mac) == (
        "i-0abc",
        "m5.large",
        "02:00:00:00:00:01",
    )
    assert [c.request.method for c in mock.calls] == ["PUT", "GET", "GET", "GET"]


def test_401_renews_the_token_and_retries_once(mock: responses.RequestsMock) -> None:
    add_token(mock, "tok-1")
    add_token(mock, "tok-2")
    path = URL + "/latest/meta-data/instance-id"
    mock.add(responses.GET, path, status=401)
    mock.add(responses.GET, path, body="i-0abc")
    metadata, _ = session_metadata()
    assert metadata.instance_id == "i-0abc"
    gets = [c.request for c in mock.calls if c.request.method == "GET"]
    assert [r.headers[TOKEN_HEADER] for r in gets] == ["tok-1", "tok-2"]


def test_a_second_401_is_an_error_not_a_loop(mock: responses.RequestsMock) -> None:
    add_token(mock, "tok-1")
    add_token(mock, "tok-2")
    mock.add(responses.GET, URL + "/latest/meta-data/instance-id", status=401)
    metadata, _ = session_metadata()
    with pytest.raises(IMDSHTTPError) as caught:
        metadata.instance_id  # noqa: B018
    assert caught.value.status == 401
    assert len(mock.calls) == 4  # PUT, GET, PUT, GET


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_statuses_are_retried(
    mock: responses.RequestsMock, no_sleep: List[float], status: int
) -> None:
    add_token(mock)
    path = URL + "/latest/meta-data/instance-id"
    mock.add(responses.GET, path, status=status)
    mock.add(responses.GET, path, body="i-0abc")
    metadata, _ = session_metadata()
    assert metadata.instance_id == "i-0abc"
    assert len(no_sleep) == 1


def test_connection_errors_are_retried(mock: responses.RequestsMock, no_sleep: List[float]) -> None:
    add_token(mock)
    path = URL + "/latest/meta-data/instance-id"
    mock.add(responses.GET, path, body=requests.ConnectionError("connection reset"))
    mock.add(responses.GET, path, body="i-0abc")
    metadata, _ = session_metadata()
    assert metadata.instance_id == "i-0abc"


def test_back_off_grows_exponentially_up_to_the_attempt_limit(
    mock: responses.RequestsMock, no_sleep: List[float]
) -> None:
    add_token(mock)
    mock.add(
        responses.GET,
        URL + "/latest/meta-data/instance-id",
        body=requests.ConnectionError("refused"),
    )
    metadata, _ = session_metadata(attempts=6)
    with pytest.raises(IMDSUnavailableError):
        metadata.instance_id  # noqa: B018
    assert len([c for c in mock.calls if c.request.method == "GET"]) == 6
    # full jitter pinned to its ceiling: 0.05 * 2**n, capped at one second
    assert no_sleep == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0], abs=0.05)


def test_a_busy_service_gets_more_tries_and_its_retry_after(
    mock: responses.RequestsMock, no_sleep: List[float]
) -> None:
    # 429/5xx say the service is there: more tries than `attempts`, as long as
    # the deadline allows; a Retry-After is waited out.
    add_token(mock)
    mock.add(
        responses.GET,
        URL + "/latest/meta-data/instance-id",
        status=503,
        headers={"Retry-After": "2"},
    )
    # The deadline, 2 x (20 s + 1 s), leaves room for every try 2 s apart.
    metadata, _ = session_metadata(attempts=2, timeout=20)
    with pytest.raises(IMDSHTTPError) as caught:
        metadata.instance_id  # noqa: B018
    assert caught.value.status == 503
    tries = len([c for c in mock.calls if c.request.method == "GET"])
    assert tries == busy_tries(2) > 2
    assert no_sleep == pytest.approx([2.0] * (tries - 1), abs=0.05)


def test_a_pass_runs_requests_at_once_up_to_max_concurrency(
    mock: responses.RequestsMock,
) -> None:
    # The session's requests go through the same scheduler as the default
    # transport's: several in flight on its worker threads, never more than
    # max_concurrency.
    add_token(mock)
    lock = threading.Lock()
    in_flight = [0]
    most = [0]

    def answer(request: requests.PreparedRequest) -> Tuple[int, Dict[str, str], str]:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.05)  # long enough for the others to leave meanwhile
        with lock:
            in_flight[0] -= 1
        return 200, {}, str(request.url).rsplit("/", 1)[-1]

    paths = ["meta-data/p{}".format(index) for index in range(12)]
    for path in paths:
        mock.add_callback(responses.GET, URL + "/latest/" + path, callback=answer)
    client = IMDSClient(requests.Session(), endpoint=URL, max_concurrency=3)
    got = client.fetch(paths)
    assert got == {path: path.rsplit("/", 1)[-1].encode() for path in paths}
    assert 2 <= most[0] <= 3


def test_retries_of_a_pass_share_one_quota(
    mock: responses.RequestsMock, no_sleep: List[float]
) -> None:
    # Each request alone could try busy_tries(10) = 136 times; the pass may
    # spend RETRY_QUOTA + RETRY_SHARE per request in all (the SDKs' retry quota).
    add_token(mock)
    paths = ["meta-data/a", "meta-data/b", "meta-data/c"]
    for path in paths:
        mock.add(responses.GET, URL + "/latest/" + path, status=500)
    client = IMDSClient(requests.Session(), endpoint=URL, attempts=10, timeout=60)
    got = client.fetch(paths)
    assert all(isinstance(got[path], IMDSHTTPError) for path in paths)
    gets = len([c for c in mock.calls if c.request.method == "GET"])
    retries = RETRY_QUOTA + RETRY_SHARE * len(paths)
    assert retries < len(paths) * (busy_tries(10) - 1)
    assert gets == len(paths) + retries


def test_non_retryable_statuses_fail_at_once(mock: responses.RequestsMock) -> None:
    add_token(mock)
    mock.add(responses.GET, URL + "/latest/meta-data/instance-id", status=403)
    metadata, _ = session_metadata()
    with pytest.raises(IMDSHTTPError) as caught:
        metadata.instance_id  # noqa: B018
    assert caught.value.status == 403
    assert len(mock.calls) == 2


def test_absent_is_none_and_failed_is_an_error(
    mock: responses.RequestsMock, no_sleep: List[float]
) -> None:
    add_token(mock)
    mock.add(responses.GET, URL + "/latest/meta-data/public-ipv4", status=404)
    mock.add(responses.GET, URL + "/latest/meta-data/kernel-id", status=500)
    mock.add(responses.GET, URL + "/latest/meta-data/instance-id", status=404)
    metadata, _ = session_metadata()
    assert metadata.public_ipv4 is None
    with pytest.raises(IMDSHTTPError):
        metadata.kernel_id  # noqa: B018
    # a value IMDS always has is an error when absent, never None
    with pytest.raises(PathNotFoundError):
        metadata.instance_id  # noqa: B018


@pytest.mark.parametrize(
    ("status", "hint"),
    [(403, "turned off"), (404, "does not support IMDSv2"), (405, "does not support IMDSv2")],
)
def test_refused_token_is_a_token_error(
    mock: responses.RequestsMock, status: int, hint: str
) -> None:
    mock.add(responses.PUT, TOKEN_URL, status=status)
    metadata, _ = session_metadata()
    with pytest.raises(TokenError, match=hint) as caught:
        metadata.instance_id  # noqa: B018
    assert caught.value.status == status
    assert len(mock.calls) == 1  # no GET without a token unless IMDSv1 is allowed


def test_imdsv1_fallback_only_when_allowed(mock: responses.RequestsMock) -> None:
    mock.add(responses.PUT, TOKEN_URL, status=403)
    mock.add(responses.GET, URL + "/latest/meta-data/instance-id", body="i-0abc")
    metadata, _ = session_metadata(allow_imdsv1=True)
    assert metadata.instance_id == "i-0abc"
    assert TOKEN_HEADER not in mock.calls[-1].request.headers


def test_empty_token_is_a_token_error(mock: responses.RequestsMock) -> None:
    mock.add(responses.PUT, TOKEN_URL, body="")
    metadata, _ = session_metadata()
    with pytest.raises(TokenError, match="empty token"):
        metadata.instance_id  # noqa: B018


def test_session_timeout_is_a_timeout_error(mock: responses.RequestsMock) -> None:
    mock.add(responses.PUT, TOKEN_URL, body=requests.ReadTimeout("slow"))
    metadata, _ = session_metadata(attempts=1)
    with pytest.raises(TokenTimeoutError):
        metadata.instance_id  # noqa: B018


def test_token_ttl_argument_is_what_the_client_asks_for(mock: responses.RequestsMock) -> None:
    add_token(mock)
    mock.add(responses.GET, URL + "/latest/meta-data/instance-id", body="i-0abc")
    metadata, _ = session_metadata(token_ttl=300)
    assert metadata.instance_id == "i-0abc"
    assert mock.calls[0].request.headers[TTL_HEADER] == "300"


# -- unit: the overall deadline, on a fake clock -----------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


class SlowTransport(Transport):
    """Answers the token at once; every GET costs ``cost`` seconds, then times out."""

    def __init__(self, clock: FakeClock, cost: float) -> None:
        self.clock = clock
        self.cost = cost
        self.gets = 0

    def send(self, job: Job, timeout: float) -> Response:
        if job.method == "PUT":
            return Response(200, {TTL_HEADER.lower(): "21600"}, b"tok")
        self.gets += 1
        self.clock.now += self.cost
        raise IMDSTimeoutError("no answer")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(client_module, "time", fake)
    monkeypatch.setattr(tokens_module, "time", fake)  # the token's lifetime runs on it too
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    return fake


def test_deadline_stops_retries_against_a_server_slower_than_its_timeout(
    clock: FakeClock,
) -> None:
    # Each GET takes 5s although the timeout is 1s; the deadline for 10
    # attempts is 10 * (1s + 1s back-off cap) = 20s, so retries stop early.
    transport = SlowTransport(clock, cost=5.0)
    client = IMDSClient(transport=transport, attempts=10, timeout=1, endpoint=URL)
    with pytest.raises(IMDSTimeoutError):
        client.get("meta-data/instance-id")
    assert transport.gets == 4


def test_attempts_bound_retries_before_the_deadline(clock: FakeClock) -> None:
    transport = SlowTransport(clock, cost=0.5)
    client = IMDSClient(transport=transport, attempts=3, timeout=1, endpoint=URL)
    with pytest.raises(IMDSTimeoutError):
        client.get("meta-data/instance-id")
    assert transport.gets == 3


class DripServer:
    """Sends a status line, then one header byte every 50 ms: never a whole answer."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = "http://127.0.0.1:{}".format(self.sock.getsockname()[1])
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        self.sock.settimeout(0.05)
        conns = []
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                conns.append(conn)
            except socket.timeout:
                pass
            for conn in conns:
                with contextlib.suppress(OSError):
                    conn.sendall(b"X")
        for conn in conns:
            conn.close()
        self.sock.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)


def test_a_server_that_never_finishes_answering_times_out() -> None:
    # Per-socket-read timeouts would wait forever here; the client bounds the whole answer.
    server = DripServer()
    try:
        metadata = EC2Metadata(endpoint=server.url, timeout=0.3, attempts=1)
        with pytest.raises(TokenTimeoutError):
            metadata.instance_id  # noqa: B018
    finally:
        server.close()


# -- integration: the simulator over real HTTP -----------------------------


def test_default_transport_is_the_standard_library(imds_simulator: Simulator) -> None:
    metadata = EC2Metadata()
    assert isinstance(metadata.client.transport, StdlibTransport)
    assert metadata.instance_id == "i-0123456789abcdef0"
    assert imds_simulator.stats.token_requests == 1


def test_token_is_renewed_before_the_granted_ttl_runs_out(imds_simulator: Simulator) -> None:
    imds_simulator.token_ttl_cap = 1  # the client asks for 21600 s, IMDS grants 1 s
    metadata = EC2Metadata()
    assert metadata.instance_id == "i-0123456789abcdef0"
    time.sleep(1.1)  # let the granted second pass; the assertions are on counts
    assert metadata.instance_type == "m5.large"
    stats = imds_simulator.stats
    assert stats.token_requests == 2
    assert stats.by_status[401] == 0  # renewed ahead of expiry, not after a refusal


def test_expired_token_is_replaced_after_a_401(imds_simulator: Simulator) -> None:
    metadata = EC2Metadata()
    assert metadata.instance_id == "i-0123456789abcdef0"
    imds_simulator.expire_tokens()
    assert metadata.instance_type == "m5.large"
    stats = imds_simulator.stats
    assert stats.token_requests == 2
    assert stats.by_status[401] == 1
    assert stats.by_path["GET /latest/meta-data/instance-type"] == 2


def test_silent_imds_raises_token_timeout_naming_the_hop_limit(
    imds_simulator_factory: Callable[..., Simulator],
) -> None:
    sim = imds_simulator_factory(silent=True)
    metadata = EC2Metadata(endpoint=sim.url, timeout=0.2, attempts=2)
    with pytest.raises(TokenTimeoutError) as caught:
        metadata.instance_id  # noqa: B018
    message = str(caught.value)
    assert "hop limit" in message
    assert "--http-put-response-hop-limit 2" in message
    assert "\n" not in message
    assert isinstance(caught.value, IMDSTimeoutError)
    assert isinstance(caught.value, IMDSUnavailableError)
    assert sim.stats.token_requests == 2


def test_silent_token_put_only(imds_simulator: Simulator) -> None:
    imds_simulator.add_fault(path="/latest/api/token", method="PUT", action="silent")
    metadata = EC2Metadata(timeout=0.2, attempts=1)
    with pytest.raises(TokenTimeoutError, match="hop-limit"):
        metadata.region  # noqa: B018
    assert imds_simulator.stats.by_path["GET /latest/dynamic/instance-identity/document"] == 0


def test_refused_port_is_unavailable_not_a_timeout() -> None:
    metadata = EC2Metadata(endpoint="http://127.0.0.1:{}".format(free_port()))
    with pytest.raises(IMDSUnavailableError) as caught:
        metadata.instance_id  # noqa: B018
    assert not isinstance(caught.value, IMDSTimeoutError)
    assert "cannot reach IMDS at 127.0.0.1" in str(caught.value)


def test_5xx_then_success_is_retried_over_http(imds_simulator: Simulator) -> None:
    fault = imds_simulator.add_fault(path="/latest/meta-data/instance-id", status=503, times=2)
    assert EC2Metadata().instance_id == "i-0123456789abcdef0"
    assert fault.hits == 2
    assert imds_simulator.stats.by_path["GET /latest/meta-data/instance-id"] == 3


def test_5xx_past_the_attempts_is_an_error_not_none(imds_simulator: Simulator) -> None:
    imds_simulator.add_fault(path="/latest/meta-data/public-ipv4", status=500)
    with pytest.raises(IMDSHTTPError) as caught:
        EC2Metadata(attempts=2).public_ipv4  # noqa: B018
    assert caught.value.status == 500
    # An answer asking for a retry may take more tries than `attempts`, never unbounded.
    tries = imds_simulator.stats.by_path["GET /latest/meta-data/public-ipv4"]
    assert 2 < tries <= busy_tries(2)


@pytest.mark.parametrize("action", ["reset", "truncate"])
def test_broken_answers_are_retried(imds_simulator: Simulator, action: str) -> None:
    fault = imds_simulator.add_fault(path="/latest/meta-data/instance-id", action=action, times=1)
    assert EC2Metadata().instance_id == "i-0123456789abcdef0"
    assert fault.hits == 1


def test_truncated_answers_every_time_are_an_error(imds_simulator: Simulator) -> None:
    imds_simulator.add_fault(path="/latest/meta-data/instance-id", action="truncate")
    with pytest.raises(IMDSUnavailableError):
        EC2Metadata().instance_id  # noqa: B018


@pytest.mark.imds_simulator(keep_alive=True)
def test_sequential_reads_share_one_kept_alive_connection(imds_simulator: Simulator) -> None:
    metadata = EC2Metadata()
    for name in ("instance_id", "instance_type", "mac", "ami_id", "region", "domain"):
        getattr(metadata, name)
    assert imds_simulator.stats.connections == 1


@pytest.mark.imds_simulator(keep_alive=True)
def test_stale_kept_alive_connection_is_replaced(imds_simulator: Simulator) -> None:
    metadata = EC2Metadata()
    assert metadata.instance_id == "i-0123456789abcdef0"
    # A restart closes the pooled connection under the client.
    imds_simulator.stop()
    imds_simulator.start()
    imds_simulator.reset_stats()
    assert metadata.instance_type == "m5.large"
    # The dead socket was replaced by exactly one new connection, without an
    # error reaching the caller (whether the old token survived the restart
    # is the simulator's business).
    assert imds_simulator.stats.connections == 1


def test_ipv6_loopback(imds_simulator_factory: Callable[..., Simulator]) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    sim = imds_simulator_factory(host="::1")
    assert sim.url.startswith("http://[::1]:")
    metadata = EC2Metadata(endpoint=sim.url)
    assert metadata.instance_id == "i-0123456789abcdef0"
    assert metadata.tags["Name"] == "web-01"
    assert sim.stats.token_requests == 1


def test_get_many_shares_the_token(imds_simulator: Simulator) -> None:
    client = EC2Metadata().client
    paths = ["meta-data/instance-id", "meta-data/instance-type", "meta-data/kernel-id"]
    assert client.get_many(paths) == {
        "meta-data/instance-id": b"i-0123456789abcdef0",
        "meta-data/instance-type": b"m5.large",
        "meta-data/kernel-id": None,
    }
    assert imds_simulator.stats.token_requests == 1


class DelayedTransport(Transport):
    """Answers the token at once; each GET with its path's (status, seconds to wait)."""

    def __init__(self, answers: Dict[str, Tuple[int, float]]) -> None:
        self.answers = answers

    def send(self, job: Job, timeout: float) -> Response:
        if job.method == "PUT":
            return Response(200, {TTL_HEADER.lower(): "21600"}, b"tok")
        status, delay = self.answers[job.path]
        time.sleep(delay)
        return Response(status, {}, b"body")


def test_get_many_raises_the_first_failing_path_in_the_order_asked() -> None:
    transport = DelayedTransport(
        {
            "/latest/meta-data/ami-id": (200, 0.0),
            "/latest/meta-data/instance-id": (403, 0.3),  # asked before, fails last
            "/latest/meta-data/mac": (403, 0.0),
        }
    )
    client = IMDSClient(transport=transport, endpoint=URL, attempts=1)
    with pytest.raises(IMDSHTTPError) as caught:
        client.get_many(["meta-data/ami-id", "meta-data/instance-id", "meta-data/mac"])
    assert caught.value.path == "/latest/meta-data/instance-id"


def test_get_many_returns_the_bodies_in_the_order_asked() -> None:
    transport = DelayedTransport(
        {"/latest/meta-data/ami-id": (200, 0.3), "/latest/meta-data/mac": (200, 0.0)}
    )
    client = IMDSClient(transport=transport, endpoint=URL)
    got = client.get_many(["meta-data/ami-id", "meta-data/mac"])
    assert list(got) == ["meta-data/ami-id", "meta-data/mac"]


# -- a token that runs out during a read: renewed within the same pass ------------------

FIVE_PATHS = {
    "meta-data/instance-id": b"i-0123456789abcdef0",
    "meta-data/instance-type": b"m5.large",
    "meta-data/mac": b"02:1a:2b:3c:4d:5e",
    "meta-data/ami-id": b"ami-0a1b2c3d4e5f67890",
    "meta-data/hostname": b"ip-10-0-1-23.eu-central-1.compute.internal",
}


@pytest.fixture
def pass_depth(monkeypatch: pytest.MonkeyPatch) -> List[int]:
    """[passes running now, the most ever at once] over IMDSClient._run, in any thread."""
    depth = [0, 0]
    real = IMDSClient._run

    def counted(self: IMDSClient, *args: Any) -> None:
        depth[0] += 1
        depth[1] = max(depth)
        try:
            real(self, *args)
        finally:
            depth[0] -= 1

    monkeypatch.setattr(IMDSClient, "_run", counted)
    return depth


def test_a_token_that_runs_out_mid_read_is_renewed_within_the_pass(
    imds_simulator: Simulator, pass_depth: List[int]
) -> None:
    # A 1 s token, 250 ms a request, one at a time: the token runs out
    # after the fourth request leaves, a second before the last has.
    imds_simulator.token_ttl_cap = 1
    imds_simulator.latency = 0.25
    client = EC2Metadata(max_concurrency=1).client
    assert client.fetch(FIVE_PATHS) == FIVE_PATHS
    assert pass_depth[1] == 1  # the renewal ran no pass inside the read's
    stats = imds_simulator.stats
    assert stats.token_requests == 2  # the first token, and one renewal
    assert stats.by_status[401] == 0  # renewed ahead of expiry, not after a refusal


def test_threads_whose_token_runs_out_share_one_renewal(imds_simulator: Simulator) -> None:
    imds_simulator.token_ttl_cap = 1
    imds_simulator.latency = 0.25
    client = EC2Metadata(max_concurrency=1).client
    results: List[Dict[str, Any]] = []

    def read() -> None:
        results.append(client.fetch(FIVE_PATHS))

    threads = [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [FIVE_PATHS, FIVE_PATHS]
    assert imds_simulator.stats.token_requests == 2  # one first token, one renewal


# -- secrets -----------------------------------------------------------------


def test_token_never_appears_in_messages_reprs_or_logs(
    imds_simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ec2_metadata_core")
    metadata = EC2Metadata(attempts=2)
    client = metadata.client
    token = client.tokens.get()
    texts: List[str] = []

    def record(exc: Optional[BaseException]) -> None:
        assert exc is not None
        texts.extend((str(exc), repr(exc)))

    imds_simulator.add_fault(path="/latest/meta-data/instance-type", status=401)
    imds_simulator.add_fault(path="/latest/meta-data/instance-id", status=500)
    imds_simulator.add_fault(path="/latest/meta-data/mac", action="truncate")
    imds_simulator.tags_enabled = False
    for name in ("instance_type", "instance_id", "mac", "tags", "kernel_id"):
        try:
            getattr(metadata, name)
        except IMDSError as exc:
            record(exc)
    imds_simulator.faults.clear()
    imds_simulator.silent = True
    try:
        EC2Metadata(timeout=0.2, attempts=1).instance_id  # noqa: B018
    except TokenTimeoutError as exc:
        record(exc)
    assert len(texts) == 10  # every failure above was raised and recorded
    texts.extend(
        repr(thing)
        for thing in (metadata, client, client.tokens, client.transport, client.settings)
    )
    texts.extend(entry.getMessage() for entry in caplog.records)
    assert caplog.records  # the retries and the 401 renewal were logged
    for text in texts:
        assert token not in text


def test_tags_not_enabled_message_says_how_to_enable_them(imds_simulator: Simulator) -> None:
    imds_simulator.tags_enabled = False
    with pytest.raises(TagsNotEnabledError) as caught:
        EC2Metadata().tags  # noqa: B018
    assert str(caught.value) == (
        "instance tags are not available in instance metadata: enable them with "
        "aws ec2 modify-instance-metadata-options --instance-id <id> "
        "--instance-metadata-tags enabled"
    )


# -- the import stays light ----------------------------------------------------


def test_import_needs_only_the_standard_library() -> None:
    code = (
        "import sys, ec2_metadata_core\n"
        "from ec2_metadata_core import ec2_metadata\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('requests', 'urllib3')]\n"
        "heavy += [m for m in sys.modules if m.startswith('concurrent')]\n"
        "print(sorted(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# -- the error hierarchy -------------------------------------------------------


def test_every_error_is_an_imds_error_and_callers_can_tell_kinds_apart() -> None:
    import ec2_metadata_core as package

    errors = [
        getattr(package, name)
        for name in package.__all__
        if isinstance(getattr(package, name), type)
        and issubclass(getattr(package, name), BaseException)
    ]
    assert len(errors) >= 10
    assert all(issubclass(error, IMDSError) for error in errors)
    assert issubclass(TokenTimeoutError, TokenError)
    assert issubclass(TokenTimeoutError, IMDSTimeoutError)
    assert issubclass(IMDSTimeoutError, IMDSUnavailableError)
    assert issubclass(PathNotFoundError, IMDSHTTPError)
    assert not issubclass(IMDSHTTPError, IMDSUnavailableError)
    assert not issubclass(TagsNotEnabledError, IMDSUnavailableError)


@pytest.mark.parametrize(
    ("make", "fault"),
    [
        (lambda url: EC2Metadata(endpoint=url, attempts=1).instance_id, {"status": 500}),
        (lambda url: EC2Metadata(endpoint=url, attempts=1).instance_id, {"action": "reset"}),
        (lambda url: EC2Metadata(endpoint=url, attempts=1).instance_id, {"action": "truncate"}),
        (
            lambda url: EC2Metadata(endpoint=url, attempts=1, timeout=0.2).instance_id,
            {"action": "silent"},
        ),
    ],
    ids=["5xx", "reset", "truncated", "timeout"],
)
def test_failure_messages_are_one_line_naming_the_endpoint_and_path(
    imds_simulator: Simulator, make: Callable[[str], object], fault: Dict[str, object]
) -> None:
    imds_simulator.add_fault(path="/latest/meta-data/instance-id", **fault)
    with pytest.raises(IMDSError) as caught:
        make(imds_simulator.url)
    message = str(caught.value)
    assert "\n" not in message
    assert "meta-data/instance-id" in message


FORK_CHILD_READS = """\
import os
from ec2_metadata_core import ec2_metadata
ec2_metadata.instance_id  # leaves a kept-alive socket in the pool
pid = os.fork()
if pid == 0:
    try:
        ec2_metadata.instance_type
    except BaseException:
        os._exit(1)
    os._exit(0)
_, status = os.waitpid(pid, 0)
ec2_metadata.mac
print(os.WEXITSTATUS(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.imds_simulator(keep_alive=True)
def test_a_forked_child_does_not_share_the_parents_sockets(imds_simulator: Simulator) -> None:
    # Salt forks a process per job: a socket both processes read from would
    # hand one process the other's answers.
    env = dict(os.environ, AWS_EC2_METADATA_SERVICE_ENDPOINT=imds_simulator.url)
    done = subprocess.run(
        [sys.executable, "-c", FORK_CHILD_READS],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == "0"
    # parent's connection, then one of the child's own; the parent keeps its socket
    assert imds_simulator.stats.connections == 2
    assert imds_simulator.stats.by_path["GET /latest/meta-data/instance-type"] == 1


# -- issue 18: the wait before a fresh SYN, a lone request under a long 429 run ------------


def test_the_syn_wait_is_tcp_rto_over_measured_connects_within_floor_and_ceiling() -> None:
    from ec2_metadata_core.pacing import SYN_WAIT_CEILING, SYN_WAIT_FLOOR, SynTimer

    timer = SynTimer()
    assert timer.wait() == 0.2  # nothing measured yet
    timer.measured(0.0004)  # a link-local connect: well under a millisecond
    assert timer.wait() == SYN_WAIT_FLOOR
    for _ in range(50):
        timer.measured(0.05)  # a slow route: SRTT + 4 RTTVAR follows it
    assert 0.05 <= timer.wait() < 0.06
    assert timer.wait(1) == 2 * timer.wait()  # each fresh SYN doubles the wait
    assert timer.wait(10) == SYN_WAIT_CEILING


def test_a_dropped_syn_is_sent_again_after_the_measured_wait_not_a_fixed_one() -> None:
    # A listener that never accepts, its queue full: every further SYN is dropped.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler = socket.create_connection(listener.getsockname(), timeout=5)
        try:
            transport = StdlibTransport("http://127.0.0.1:{}".format(listener.getsockname()[1]))
            transport.syn_timer.measured(0.0004)
            engine = transport.engine(0.15)
            job = Job("GET", "/latest/meta-data/ami-id", {})
            engine.submit(job, time.monotonic())
            finished: List[Any] = []
            while not finished:
                finished = engine.collect(None)
            engine.close()
        finally:
            filler.close()
    assert isinstance(finished[0][1], IMDSTimeoutError)
    # Fresh SYNs after 10, 20 and 40 ms (doubling), within the 150 ms attempt;
    # the fixed 0.2 s wait (at most half the attempt) sent one.
    assert job.resent >= 3


def test_a_lone_request_outlasts_twenty_429s_in_a_row(imds_simulator: Simulator) -> None:
    # The last read of a gather meets a request-counting throttle's whole run.
    fault = imds_simulator.add_fault(path="/latest/meta-data/instance-id", status=429, times=20)
    assert EC2Metadata(endpoint=imds_simulator.url).instance_id == "i-0123456789abcdef0"
    assert fault.hits == 20


def test_a_token_timeout_suggests_a_longer_timeout(imds_simulator: Simulator) -> None:
    # A slow IMDS is fixed by --timeout; the message never said so.
    imds_simulator.add_fault(path="/latest/api/token", method="PUT", action="silent")
    with pytest.raises(TokenTimeoutError) as caught:
        EC2Metadata(endpoint=imds_simulator.url, timeout=0.2, attempts=1).instance_id  # noqa: B018
    message = str(caught.value)
    assert "--timeout" in message and "AWS_METADATA_SERVICE_TIMEOUT" in message
    assert "\n" not in message


def test_a_server_that_does_not_take_put_is_said_not_to_be_imds(
    imds_simulator: Simulator,
) -> None:
    imds_simulator.add_fault(path="/latest/api/token", method="PUT", status=501)
    with pytest.raises(TokenError) as caught:
        EC2Metadata(endpoint=imds_simulator.url, attempts=1).instance_id  # noqa: B018
    assert str(caught.value) == (
        "IMDS answered the token request with 501: {} may not be an instance metadata "
        "service".format(imds_simulator.url)
    )


def test_a_get_never_answered_is_hedged_within_its_attempt(imds_simulator: Simulator) -> None:
    # One attempt, and the service never answers the first copy: the hedge
    # sent after the measured answer time (at least 0.1 s) gets the answer.
    fault = imds_simulator.add_fault(path="/latest/meta-data/instance-id", action="silent", times=1)
    metadata = EC2Metadata(endpoint=imds_simulator.url, attempts=1, timeout=2)
    assert metadata.instance_id == "i-0123456789abcdef0"
    assert fault.hits == 1
    assert imds_simulator.stats.by_path["GET /latest/meta-data/instance-id"] == 2


def test_a_prompt_service_is_never_sent_a_request_twice(imds_simulator: Simulator) -> None:
    from ec2_metadata_core.snapshot import snapshot

    snapshot(EC2Metadata(endpoint=imds_simulator.url))
    stats = imds_simulator.stats
    assert stats.requests == sum(stats.by_path.values())
    assert {path: n for path, n in stats.by_path.items() if n != 1} == {}
