"""Drop-in for ec2-metadata users: the exceptions their code catches, and 3.0's ``pool_manager``.

ec2-metadata 2.x raises ``requests.exceptions.HTTPError`` (``raise_for_status``)
on a failed answer, 3.0 ``urllib3.exceptions.HTTPError``. Code that hands us a
session or a pool manager catches those: the errors must be both theirs and
ours. Unit tests use ``responses`` with a ``requests.Session``; the urllib3
tests speak real HTTP to the simulator on loopback.
"""

from __future__ import annotations

import logging
import socket
from typing import Iterator, Type

import pytest
import requests
import responses
import urllib3

from ec2_metadata_core import (
    ConfigError,
    EC2Metadata,
    IMDSError,
    IMDSHTTPError,
    IMDSTimeoutError,
    IMDSUnavailableError,
    MalformedResponseError,
    TagsNotEnabledError,
    TokenError,
)
from ec2_metadata_core.simulator import Fault, Simulator
from ec2_metadata_core.snapshot import snapshot

URL = "http://127.0.0.1:9"  # responses intercepts before any socket
TOKEN_URL = URL + "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def on_session(**kwargs: object) -> EC2Metadata:
    return EC2Metadata(requests.Session(), endpoint=URL, attempts=1, **kwargs)  # type: ignore[arg-type]


def add_token(mock: responses.RequestsMock) -> None:
    mock.add(responses.PUT, TOKEN_URL, body="tok-1", headers={TTL_HEADER: "21600"})


def raised(metadata: EC2Metadata, attribute: str) -> BaseException:
    with pytest.raises(IMDSError) as caught:
        getattr(metadata, attribute)
    return caught.value


def test_a_500_is_requests_http_error_and_ours(mock: responses.RequestsMock) -> None:
    add_token(mock)
    mock.add(responses.GET, URL + "/latest/meta-data/instance-id", status=500)
    error = raised(on_session(), "instance_id")
    assert isinstance(error, IMDSHTTPError) and isinstance(error, requests.exceptions.HTTPError)
    assert error.response is not None and error.response.status_code == 500
    assert error.response.url == URL + "/latest/meta-data/instance-id"
    assert str(error) == "IMDS answered 500 for /latest/meta-data/instance-id"
    assert type(error).__name__ == "IMDSHTTPError"


def test_code_written_for_ec2_metadata_catches_it(mock: responses.RequestsMock) -> None:
    add_token(mock)
    mock.add(responses.GET, URL + "/latest/meta-data/instance-type", status=503)
    metadata = on_session()
    try:
        metadata.instance_type  # noqa: B018
    except requests.exceptions.HTTPError as exc:
        caught = exc.response.status_code
    assert caught == 503


@pytest.mark.parametrize("status", [400, 403, 404, 405, 500])
def test_a_refused_token_is_requests_http_error_and_token_error(
    mock: responses.RequestsMock, status: int
) -> None:
    mock.add(responses.PUT, TOKEN_URL, status=status)
    error = raised(on_session(), "region")
    assert isinstance(error, TokenError) and isinstance(error, requests.exceptions.HTTPError)
    assert error.response.status_code == status and error.status == status


def test_tags_not_enabled_is_requests_http_error_key_error_and_ours(
    mock: responses.RequestsMock,
) -> None:
    add_token(mock)
    mock.add(responses.GET, URL + "/latest/meta-data/tags/instance/", status=404)
    error = raised(on_session(), "tags")
    assert isinstance(error, TagsNotEnabledError) and isinstance(error, KeyError)
    assert isinstance(error, requests.exceptions.HTTPError)
    assert error.response.status_code == 404
    assert "--instance-metadata-tags enabled" in str(error)


def test_connection_failures_are_requests_connection_errors(
    mock: responses.RequestsMock,
) -> None:
    # responses refuses any URL it was not given, as a closed port would.
    error = raised(on_session(), "instance_id")
    assert isinstance(error, IMDSUnavailableError)
    assert isinstance(error, requests.exceptions.ConnectionError)
    assert not isinstance(error, requests.exceptions.HTTPError)


def test_a_timeout_is_requests_timeout(mock: responses.RequestsMock) -> None:
    add_token(mock)
    mock.add(
        responses.GET,
        URL + "/latest/meta-data/instance-id",
        body=requests.exceptions.ReadTimeout("slow"),
    )
    error = raised(on_session(), "instance_id")
    assert isinstance(error, IMDSTimeoutError) and isinstance(error, requests.exceptions.Timeout)


def test_errors_that_are_not_http_keep_their_own_types(mock: responses.RequestsMock) -> None:
    add_token(mock)
    mock.add(responses.GET, URL + "/latest/dynamic/instance-identity/document", body="{not json")
    error = raised(on_session(), "region")
    assert isinstance(error, MalformedResponseError) and isinstance(error, ValueError)
    assert not isinstance(error, requests.exceptions.RequestException)


def test_without_a_session_the_errors_are_only_ours() -> None:
    with Simulator() as sim:
        sim.add_fault(path="/latest/meta-data/instance-id", status=500)
        error = raised(EC2Metadata(endpoint=sim.url, attempts=1), "instance_id")
    assert isinstance(error, IMDSHTTPError)
    assert not isinstance(
        error, (requests.exceptions.RequestException, urllib3.exceptions.HTTPError)
    )


# -- ec2-metadata 3.0: a urllib3 PoolManager ----------------------------------------------


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


@pytest.mark.parametrize("how", ["keyword", "positional"])
def test_a_pool_manager_carries_every_request(sim: Simulator, how: str) -> None:
    pool = urllib3.PoolManager()
    if how == "keyword":
        metadata = EC2Metadata(pool_manager=pool, endpoint=sim.url)
    else:  # ec2-metadata 3.0's first positional argument
        metadata = EC2Metadata(pool, endpoint=sim.url)  # type: ignore[arg-type]
    assert metadata.region == "eu-central-1"
    assert metadata.tags["Role"] == "web"
    assert type(metadata.client.transport).__name__ == "Urllib3Transport"
    assert sim.stats.token_requests == 1
    assert len(pool.pools) == 1  # the connection pool for the endpoint: it carried them


@pytest.mark.parametrize(
    ("fault", "attribute", "ours", "theirs"),
    [
        (
            Fault(path="/latest/meta-data/instance-id", status=500),
            "instance_id",
            IMDSHTTPError,
            urllib3.exceptions.HTTPError,
        ),
        (
            Fault(path="/latest/api/token", method="PUT", status=403),
            "instance_id",
            TokenError,
            urllib3.exceptions.HTTPError,
        ),
        (
            Fault(path="/latest/meta-data/instance-id", action="delay", delay=0.5),
            "instance_id",
            IMDSTimeoutError,
            urllib3.exceptions.TimeoutError,
        ),
    ],
    ids=["500", "token-403", "timeout"],
)
def test_pool_manager_errors_are_urllib3_errors_and_ours(
    sim: Simulator,
    fault: Fault,
    attribute: str,
    ours: Type[IMDSError],
    theirs: Type[Exception],
) -> None:
    sim.faults.append(fault)
    metadata = EC2Metadata(
        pool_manager=urllib3.PoolManager(), endpoint=sim.url, attempts=1, timeout=0.2
    )
    error = raised(metadata, attribute)
    assert isinstance(error, ours) and isinstance(error, theirs), type(error).__mro__


def test_pool_manager_tags_off_and_refused_port(sim: Simulator) -> None:
    sim.tags_enabled = False
    error = raised(EC2Metadata(pool_manager=urllib3.PoolManager(), endpoint=sim.url), "tags")
    assert isinstance(error, TagsNotEnabledError) and isinstance(
        error, urllib3.exceptions.HTTPError
    )
    sim.stop()
    refused = EC2Metadata(pool_manager=urllib3.PoolManager(), endpoint=sim.url, attempts=1)
    error = raised(refused, "instance_id")
    assert isinstance(error, IMDSUnavailableError) and isinstance(
        error, urllib3.exceptions.HTTPError
    )
    assert "cannot reach IMDS" in str(error)


def test_a_refused_connect_is_worded_alike_on_every_transport() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = "http://127.0.0.1:{}".format(port)
    faces = {
        "standard library": EC2Metadata(endpoint=url, attempts=1),
        "requests": EC2Metadata(requests.Session(), endpoint=url, attempts=1),  # type: ignore[arg-type]
        "urllib3": EC2Metadata(pool_manager=urllib3.PoolManager(), endpoint=url, attempts=1),
    }
    said = {face: str(raised(metadata, "instance_id")) for face, metadata in faces.items()}
    expected = (
        "cannot reach IMDS at 127.0.0.1:{}: Connection refused "
        "(not on EC2, or the metadata endpoint is wrong or turned off)".format(port)
    )
    assert said == dict.fromkeys(faces, expected)


def test_session_and_pool_manager_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="not both"):
        EC2Metadata(requests.Session(), pool_manager=urllib3.PoolManager())


def test_a_callers_urllib3_pool_gets_no_more_at_once_than_it_keeps(
    imds_simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    # A PoolManager keeps one connection per host: more requests at once and
    # urllib3 warns "Connection pool is full, discarding connection" for each.
    with caplog.at_level(logging.WARNING, logger="urllib3"):
        facts = snapshot(EC2Metadata(urllib3.PoolManager(), endpoint=imds_simulator.url))
    assert facts["region"] == "eu-central-1"
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_a_refused_port_reads_the_same_through_a_session_as_through_the_stdlib() -> None:
    # The session path said only "ConnectionError" (issue 18).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = "http://127.0.0.1:{}".format(port)
    for metadata in (
        EC2Metadata(session=requests.Session(), endpoint=url, attempts=1),
        EC2Metadata(endpoint=url, attempts=1),
    ):
        error = raised(metadata, "instance_id")
        assert isinstance(error, IMDSUnavailableError)
        assert "Connection refused (not on EC2" in str(error), error
