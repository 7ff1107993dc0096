"""The IMDS simulator, checked over real HTTP on loopback the way a client sees it."""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import quote

import pytest

from ec2_metadata_core.simulator import DEFAULT_INSTANCE_PATH, Fault, Simulator, load_instance

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
TTL = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN = "X-aws-ec2-metadata-token"
MD = "/latest/meta-data/"
PREFIX = "ec2-metadata-core simulate: error:"

Response = Tuple[int, Dict[str, str], bytes]


def call(
    sim: Simulator,
    method: str,
    path: str,
    headers: Optional[Dict[str, str]] = None,
    timeout: float = 5.0,
    conn: Optional[http.client.HTTPConnection] = None,
) -> Response:
    own = conn is None
    if conn is None:
        conn = http.client.HTTPConnection(sim.host, sim.port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        if own:
            conn.close()


def token(sim: Simulator, ttl: int = 21600) -> str:
    status, _, body = call(sim, "PUT", "/latest/api/token", {TTL: str(ttl)})
    assert status == 200
    return body.decode()


def get(sim: Simulator, path: str, tok: Optional[str] = None) -> Response:
    return call(sim, "GET", path, {TOKEN: tok} if tok is not None else {})


def text(sim: Simulator, path: str) -> str:
    status, _, body = get(sim, path, token(sim))
    assert status == 200, (path, status)
    return body.decode()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as running:
        yield running


@pytest.fixture
def tok(sim: Simulator) -> str:
    return token(sim)


# -- token protocol ---------------------------------------------------------------


def test_token_is_granted_with_ttl_echoed_and_opens_metadata(sim: Simulator) -> None:
    status, headers, body = call(sim, "PUT", "/latest/api/token", {TTL: "300"})
    assert status == 200
    assert headers[TTL.lower()] == "300"
    assert len(body) >= 40
    assert get(sim, MD + "instance-id", body.decode())[2] == b"i-0123456789abcdef0"


@pytest.mark.parametrize("ttl", ["0", "21601", None, "abc", "1.5", "-5", ""])
def test_bad_token_ttl_is_400(sim: Simulator, ttl: Optional[str]) -> None:
    headers = {TTL: ttl} if ttl is not None else {}
    assert call(sim, "PUT", "/latest/api/token", headers)[0] == 400


def test_token_put_through_a_proxy_is_403(sim: Simulator) -> None:
    headers = {TTL: "60", "X-Forwarded-For": "10.0.0.9"}
    assert call(sim, "PUT", "/latest/api/token", headers)[0] == 403


def test_requests_without_or_with_unknown_token_are_401(sim: Simulator) -> None:
    status, headers, body = get(sim, MD + "instance-id")
    assert status == 401
    assert b"i-0123456789abcdef0" not in body
    assert headers["content-type"] == "text/html"
    assert get(sim, MD + "instance-id", "not-a-token")[0] == 401


def test_imdsv1_mode_serves_tokenless_but_still_rejects_bad_tokens() -> None:
    with Simulator(imdsv1=True) as sim:
        assert get(sim, MD + "instance-type")[2] == b"m5.large"
        assert get(sim, MD + "instance-type", "bogus")[0] == 401


def test_token_expires_after_the_capped_ttl() -> None:
    with Simulator(token_ttl_cap=1) as sim:
        status, headers, body = call(sim, "PUT", "/latest/api/token", {TTL: "21600"})
        assert (status, headers[TTL.lower()]) == (200, "1")
        assert get(sim, MD + "instance-id", body.decode())[0] == 200
        time.sleep(1.1)
        assert get(sim, MD + "instance-id", body.decode())[0] == 401


def test_expire_tokens_invalidates_issued_tokens(sim: Simulator, tok: str) -> None:
    assert get(sim, MD + "ami-id", tok)[0] == 200
    sim.expire_tokens()
    assert get(sim, MD + "ami-id", tok)[0] == 401
    assert get(sim, MD + "ami-id", token(sim))[0] == 200


def test_restart_keeps_port_and_tokens_but_drops_connections(sim: Simulator, tok: str) -> None:
    sim.keep_alive = True
    port = sim.port
    conn = http.client.HTTPConnection(sim.host, sim.port, timeout=5)
    assert call(sim, "GET", MD + "ami-id", {TOKEN: tok}, conn=conn)[0] == 200
    sim.stop()
    with pytest.raises(ConnectionRefusedError):
        get(sim, MD + "ami-id", tok)
    sim.start()
    assert sim.port == port
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        call(sim, "GET", MD + "ami-id", {TOKEN: tok}, conn=conn)  # the kept-alive one is gone
    conn.close()
    assert get(sim, MD + "ami-id", tok)[0] == 200


def test_wrong_methods_are_405(sim: Simulator, tok: str) -> None:
    assert call(sim, "POST", MD, {TOKEN: tok})[0] == 405
    assert call(sim, "DELETE", MD + "ami-id", {TOKEN: tok})[0] == 405
    status, headers, _ = call(sim, "GET", "/latest/api/token", {TOKEN: tok})
    assert (status, headers["allow"]) == (405, "PUT")
    assert call(sim, "PUT", MD + "ami-id", {TTL: "60"})[0] == 405


# -- the data tree --------------------------------------------------------------------


def test_absent_paths_are_404_with_an_error_page(sim: Simulator, tok: str) -> None:
    for path in ("kernel-id", "ramdisk-id", "spot/instance-action", "spot/", "nope/deeper"):
        status, headers, body = get(sim, MD + path, tok)
        assert status == 404, path
        assert headers["content-type"] == "text/html"
        assert b"404 - Not Found" in body
    assert get(sim, "/latest/nothing", tok)[0] == 404
    assert get(sim, MD + "ami-id/below-a-leaf", tok)[0] == 404


def test_latest_lists_top_level_entries(sim: Simulator, tok: str) -> None:
    status, headers, body = get(sim, "/latest/", tok)
    assert status == 200
    assert headers["content-type"] == "text/plain"
    assert body == b"dynamic\nmeta-data\nuser-data"


def test_listings_mark_directories_and_have_no_trailing_newline(sim: Simulator, tok: str) -> None:
    body = get(sim, MD, tok)[2]
    entries = body.decode().split("\n")
    assert not body.endswith(b"\n")
    assert {"ami-id", "iam/", "placement/", "network/", "public-keys/", "tags/"} <= set(entries)
    assert "kernel-id" not in entries
    assert get(sim, MD.rstrip("/"), tok)[2] == body  # real IMDS answers without slash too
    bdm = get(sim, MD + "block-device-mapping/", tok)[2].decode().split("\n")
    assert sorted(bdm) == ["ami", "ebs1", "ephemeral0", "root"]
    assert get(sim, "/latest/dynamic/", tok)[2] == b"instance-identity/"


def test_list_values_are_one_item_per_line(sim: Simulator, tok: str) -> None:
    assert get(sim, MD + "security-groups", tok)[2] == b"web-sg\nssh-from-bastion"


def test_public_keys_use_index_equals_name(sim: Simulator, tok: str) -> None:
    assert get(sim, MD + "public-keys/", tok)[2] == b"0=simulator-key"
    assert get(sim, MD + "public-keys/0/", tok)[2] == b"openssh-key"
    assert get(sim, MD + "public-keys/0", tok)[2] == b"openssh-key"
    key = get(sim, MD + "public-keys/0/openssh-key", tok)[2].decode()
    assert key.startswith("ssh-ed25519 AAAA") and key.endswith(" simulator-key")
    assert get(sim, MD + "public-keys/1/openssh-key", tok)[0] == 404


def test_tags_with_special_characters_are_served_by_their_literal_key(
    sim: Simulator, tok: str
) -> None:
    keys = get(sim, MD + "tags/instance/", tok)[2].decode().split("\n")
    assert keys == [
        "Name",
        "Role",
        "aws:autoscaling:groupName",
        "cost.center",
        "env-tier",
        "env_tier",
    ]
    assert get(sim, MD + "tags/instance/aws:autoscaling:groupName", tok)[2] == b"web-asg"
    # Paths are taken literally, as the real service may: a key made of path
    # characters is not found by its percent-encoded form.
    quoted = MD + "tags/instance/" + quote("aws:autoscaling:groupName", safe="")
    assert quoted.endswith("aws%3Aautoscaling%3AgroupName")
    assert get(sim, quoted, tok)[0] == 404
    assert get(sim, MD + "tags/instance/env-tier", tok)[2] == b"frontend"
    assert get(sim, MD + "tags/instance/env_tier", tok)[2] == b"backend"


def test_tags_can_be_disabled_and_reenabled_live(sim: Simulator, tok: str) -> None:
    sim.tags_enabled = False
    assert get(sim, MD + "tags/instance/", tok)[0] == 404
    assert get(sim, MD + "tags/instance/Name", tok)[0] == 404
    assert get(sim, MD + "tags", tok)[0] == 404
    assert "tags/" not in get(sim, MD, tok)[2].decode().split("\n")
    sim.tags_enabled = True
    assert get(sim, MD + "tags/instance/Name", tok)[2] == b"web-01"


def test_default_instance_has_every_documented_path(sim: Simulator, tok: str) -> None:
    leaves = [
        "ami-id", "ami-launch-index", "ami-manifest-path", "ancestor-ami-ids",
        "autoscaling/target-lifecycle-state", "block-device-mapping/ami",
        "block-device-mapping/root", "block-device-mapping/ebs1",
        "block-device-mapping/ephemeral0", "events/maintenance/history",
        "events/maintenance/scheduled", "events/recommendations/rebalance", "hostname",
        "iam/info", "identity-credentials/ec2/info",
        "identity-credentials/ec2/security-credentials/ec2-instance", "instance-action",
        "instance-id", "instance-life-cycle", "instance-type", "ipv6", "local-hostname",
        "local-ipv4", "mac", "placement/availability-zone", "placement/availability-zone-id",
        "placement/group-name", "placement/host-id", "placement/partition-number",
        "placement/region", "product-codes", "public-hostname", "public-ipv4",
        "public-keys/0/openssh-key", "reservation-id", "security-groups", "services/domain",
        "services/partition", "system", "tags/instance/Name", "tags/instance/Role",
        "tags/instance/cost.center",
    ]  # fmt: skip
    missing = [p for p in leaves if get(sim, MD + p, tok)[0] != 200]
    assert missing == []
    for path in ("document", "pkcs7", "signature", "rsa2048"):
        status, _, body = get(sim, "/latest/dynamic/instance-identity/" + path, tok)
        assert status == 200 and body, path
    expected = {
        "instance-id": "i-0123456789abcdef0",
        "instance-type": "m5.large",
        "instance-life-cycle": "on-demand",
        "instance-action": "none",
        "system": "nitro",
        "placement/region": "eu-central-1",
        "placement/availability-zone": "eu-central-1b",
        "placement/availability-zone-id": "euc1-az3",
        "services/partition": "aws",
        "tags/instance/Role": "web",
    }
    assert {k: get(sim, MD + k, tok)[2].decode() for k in expected} == expected


def test_identity_document_agrees_with_metadata(sim: Simulator, tok: str) -> None:
    doc = json.loads(get(sim, "/latest/dynamic/instance-identity/document", tok)[2])

    def md(path: str) -> str:
        return get(sim, MD + path, tok)[2].decode()

    assert doc["region"] == md("placement/region")
    assert doc["availabilityZone"] == md("placement/availability-zone")
    assert doc["instanceId"] == md("instance-id")
    assert doc["instanceType"] == md("instance-type")
    assert doc["privateIp"] == md("local-ipv4")
    assert doc["imageId"] == md("ami-id")
    assert doc["accountId"] == "123456789012"
    assert doc["accountId"] in json.loads(md("iam/info"))["InstanceProfileArn"]


def test_iam_role_name_differs_from_instance_profile_name(sim: Simulator, tok: str) -> None:
    info = json.loads(get(sim, MD + "iam/info", tok)[2])
    profile = info["InstanceProfileArn"].rsplit("/", 1)[1]
    roles = get(sim, MD + "iam/security-credentials/", tok)[2].decode().split("\n")
    assert len(roles) == 1 and roles[0] != profile
    creds = json.loads(get(sim, MD + "iam/security-credentials/" + roles[0], tok)[2])
    assert creds["AccessKeyId"] == "ASIASIMULATORKEY0001"
    assert "simulator-secret" in creds["SecretAccessKey"]
    assert "simulator-session-token" in creds["Token"]
    ident = MD + "identity-credentials/ec2/security-credentials/ec2-instance"
    assert "simulator-secret" in json.loads(get(sim, ident, tok)[2])["SecretAccessKey"]


def test_scheduled_events_use_the_imds_format(sim: Simulator, tok: str) -> None:
    events = json.loads(get(sim, MD + "events/maintenance/scheduled", tok)[2])
    assert len(events) == 1
    assert events[0]["Code"] == "system-reboot"
    not_before = time.strptime(events[0]["NotBefore"], "%d %b %Y %H:%M:%S GMT")
    assert not_before < time.strptime(events[0]["NotAfter"], "%d %b %Y %H:%M:%S GMT")
    assert isinstance(json.loads(get(sim, MD + "events/maintenance/history", tok)[2]), list)
    rebalance = json.loads(get(sim, MD + "events/recommendations/rebalance", tok)[2])
    assert rebalance["noticeTime"].endswith("Z")


def test_two_network_interfaces_device_one_private_only(sim: Simulator, tok: str) -> None:
    macs_dir = MD + "network/interfaces/macs/"
    macs = get(sim, macs_dir, tok)[2].decode().split("\n")
    assert len(macs) == 2 and all(m.endswith("/") for m in macs)
    primary = get(sim, MD + "mac", tok)[2].decode()
    eni0 = macs_dir + primary + "/"
    keys = set(get(sim, eni0, tok)[2].decode().split("\n"))
    wanted = {
        "device-number", "interface-id", "ipv4-associations/", "ipv4-prefix", "ipv6-prefix",
        "ipv6s", "local-hostname", "local-ipv4s", "mac", "network-card-index", "owner-id",
        "public-hostname", "public-ipv4s", "security-group-ids", "security-groups",
        "subnet-id", "subnet-ipv4-cidr-block", "subnet-ipv6-cidr-blocks", "vpc-id",
        "vpc-ipv4-cidr-block", "vpc-ipv4-cidr-blocks", "vpc-ipv6-cidr-blocks",
    }  # fmt: skip
    assert wanted <= keys
    public_ip = get(sim, MD + "public-ipv4", tok)[2].decode()
    assert (
        get(sim, eni0 + "ipv4-associations/" + public_ip, tok)[2]
        == get(sim, MD + "local-ipv4", tok)[2]
    )
    assert get(sim, eni0 + "ipv6s", tok)[2] == get(sim, MD + "ipv6", tok)[2]
    other = next(m for m in macs if m != primary + "/")
    assert get(sim, macs_dir + other + "device-number", tok)[2] == b"1"
    assert get(sim, macs_dir + other + "public-ipv4s", tok)[0] == 404


def test_default_user_data_is_text_with_a_fake_secret(sim: Simulator, tok: str) -> None:
    status, headers, body = get(sim, "/latest/user-data", tok)
    assert status == 200
    assert headers["content-type"] == "application/octet-stream"
    assert body.startswith(b"#cloud-config") and b"simulator-user-data-secret" in body


def test_binary_user_data_round_trips_and_can_be_removed(sim: Simulator, tok: str) -> None:
    payload = gzip.compress(b"#!/bin/sh\necho hi\n" + bytes(range(256)))
    sim.set("user-data", {"$base64": base64.b64encode(payload).decode()})
    status, headers, body = get(sim, "/latest/user-data", tok)
    assert (status, body) == (200, payload)
    assert headers["content-length"] == str(len(payload))
    sim.delete("/latest/user-data")
    assert get(sim, "/latest/user-data", tok)[0] == 404
    assert get(sim, "/latest/", tok)[2] == b"dynamic\nmeta-data"


def test_head_has_headers_but_no_body(sim: Simulator, tok: str) -> None:
    conn = http.client.HTTPConnection(sim.host, sim.port, timeout=5)
    status, headers, body = call(sim, "HEAD", MD + "instance-id", {TOKEN: tok}, conn=conn)
    assert (status, body, headers["content-length"]) == (200, b"", "19")
    # The connection is still in sync after a bodiless answer.
    assert (
        call(sim, "GET", MD + "instance-id", {TOKEN: tok}, conn=conn)[2] == b"i-0123456789abcdef0"
    )
    conn.close()


# -- live changes ---------------------------------------------------------------------


def test_spot_notice_arrives_and_goes_live(sim: Simulator, tok: str) -> None:
    notice = {"action": "terminate", "time": "2026-11-26T12:00:00Z"}
    sim.set("meta-data/spot/instance-action", {"$json": notice, "$compact": True})
    assert json.loads(get(sim, MD + "spot/instance-action", tok)[2]) == notice
    assert "spot/" in get(sim, MD, tok)[2].decode().split("\n")
    sim.delete("meta-data/spot")
    assert get(sim, MD + "spot/instance-action", tok)[0] == 404
    sim.set("meta-data/tags/instance/Role", "worker")
    assert get(sim, MD + "tags/instance/Role", tok)[2] == b"worker"


def test_live_changes_reject_bad_paths_and_values(sim: Simulator) -> None:
    with pytest.raises(KeyError):
        sim.delete("meta-data/spot/instance-action")
    with pytest.raises(ValueError, match="meta-data/ami-id is a leaf"):
        sim.set("meta-data/ami-id/child", "x")
    with pytest.raises(ValueError, match="meta-data/x"):
        sim.set("meta-data/x", 5)
    with pytest.raises(ValueError, match="must start with"):
        sim.set("other/x", "y")


# -- faults -----------------------------------------------------------------------------


def test_status_fault_forever_and_for_n_requests(sim: Simulator) -> None:
    forever = Fault(path="/latest/api/token", method="PUT", status=403, times=None)
    sim.faults.append(forever)
    assert call(sim, "PUT", "/latest/api/token", {TTL: "60"})[0] == 403
    assert call(sim, "PUT", "/latest/api/token", {TTL: "60"})[0] == 403
    sim.faults.clear()
    tok = token(sim)
    glob = sim.add_fault(path="/latest/meta-data/*", status=503, times=2)
    statuses = [get(sim, MD + "ami-id", tok)[0] for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert (forever.hits, glob.hits) == (2, 2)


def test_fault_method_filter_and_quoted_path_match(sim: Simulator, tok: str) -> None:
    sim.add_fault(path=MD + "tags/instance/aws:autoscaling:groupName", method="GET", status=500)
    quoted = MD + "tags/instance/" + quote("aws:autoscaling:groupName", safe="")
    assert get(sim, quoted, tok)[0] == 500  # a fault matches the decoded path too
    assert call(sim, "HEAD", MD + "tags/instance/aws:autoscaling:groupName", {TOKEN: tok})[0] == 200


def test_reset_fault_resets_the_connection(sim: Simulator, tok: str) -> None:
    sim.add_fault(path=MD + "instance-id", action="reset", times=1)
    with pytest.raises(ConnectionResetError):
        get(sim, MD + "instance-id", tok)
    assert get(sim, MD + "instance-id", tok)[0] == 200


def test_delay_fault_answers_late(sim: Simulator, tok: str) -> None:
    sim.add_fault(path=MD + "instance-id", action="delay", delay=0.3, times=1)
    started = time.monotonic()
    assert get(sim, MD + "instance-id", tok)[2] == b"i-0123456789abcdef0"
    assert time.monotonic() - started >= 0.3


def test_truncate_fault_sends_a_short_body(sim: Simulator, tok: str) -> None:
    sim.add_fault(path=MD + "iam/info", action="truncate")
    with pytest.raises(http.client.IncompleteRead):
        get(sim, MD + "iam/info", tok)


def test_silent_fault_makes_the_client_time_out(sim: Simulator) -> None:
    sim.add_fault(path="/latest/api/token", method="PUT", action="silent", times=1)
    with pytest.raises(socket.timeout):
        call(sim, "PUT", "/latest/api/token", {TTL: "60"}, timeout=0.3)
    assert call(sim, "PUT", "/latest/api/token", {TTL: "60"})[0] == 200


def test_body_override_serves_malformed_and_non_utf8_bodies(sim: Simulator, tok: str) -> None:
    sim.add_fault(path=MD + "iam/info", body=b'{"Code": "Succ\xff')
    status, _, body = get(sim, MD + "iam/info", tok)
    assert (status, body) == (200, b'{"Code": "Succ\xff')
    sim.add_fault(path=MD + "spot/instance-action", body="not json")
    assert get(sim, MD + "spot/instance-action", tok)[2] == b"not json"


def test_fault_rejects_unknown_actions() -> None:
    with pytest.raises(ValueError):
        Fault(action="explode")
    with pytest.raises(ValueError):
        Fault(action="delay")


def test_error_rate_answers_errors_on_gets_only() -> None:
    with Simulator(error_rate=1.0, error_statuses=(429, 503)) as sim:
        new = token(sim)  # the token PUT is not subject to error_rate
        statuses = {get(sim, MD + "ami-id", new)[0] for _ in range(20)}
        assert statuses <= {429, 503} and statuses


def test_error_rate_is_deterministic_with_a_seed() -> None:
    def run() -> List[int]:
        with Simulator(error_rate=0.5, error_statuses=(500, 503), seed=7) as sim:
            tok = token(sim)
            return [get(sim, MD + "ami-id", tok)[0] for _ in range(30)]

    first = run()
    assert first == run()
    assert 200 in first and len(set(first)) > 1


def test_latency_delays_every_answer() -> None:
    with Simulator(latency=0.2) as sim:
        started = time.monotonic()
        token(sim)
        assert time.monotonic() - started >= 0.2


def test_silent_mode_times_out_and_stop_is_prompt() -> None:
    sim = Simulator(silent=True).start()
    conn = http.client.HTTPConnection(sim.host, sim.port, timeout=0.3)
    with pytest.raises(socket.timeout):
        call(sim, "PUT", "/latest/api/token", {TTL: "60"}, conn=conn)
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 1.0
    conn.close()


def test_stop_is_prompt_with_a_request_in_flight() -> None:
    sim = Simulator(latency=30).start()
    failures: List[BaseException] = []

    def client() -> None:
        try:
            call(sim, "PUT", "/latest/api/token", {TTL: "60"}, timeout=10)
        except Exception as exc:
            failures.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    deadline = time.monotonic() + 5
    while sim.stats.requests == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 1.0
    thread.join(5)
    assert not thread.is_alive() and len(failures) == 1


def test_stop_after_ctrl_c_inside_start_frees_the_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """``simulate``'s ``finally: sim.stop()`` when SIGINT lands before the serving thread runs."""
    real_start = threading.Thread.start

    def interrupted(thread: threading.Thread) -> None:
        if thread.name.startswith("imds-simulator-"):
            raise KeyboardInterrupt
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", interrupted)
    sim = Simulator()
    with pytest.raises(KeyboardInterrupt):
        sim.start()
    sim.stop()
    assert not sim.running
    with socket.socket() as probe:  # no listener left on the port
        assert probe.connect_ex((sim.host, sim.port)) != 0


# -- counters and performance -----------------------------------------------------------


def test_stats_count_requests_tokens_paths_statuses_and_connections(sim: Simulator) -> None:
    sim.keep_alive = True
    tok = token(sim)
    conn = http.client.HTTPConnection(sim.host, sim.port, timeout=5)
    for _ in range(3):
        call(sim, "GET", MD + "instance-id", {TOKEN: tok}, conn=conn)
    call(sim, "GET", MD + "kernel-id", {TOKEN: tok}, conn=conn)
    conn.close()
    stats = sim.stats
    assert stats.requests == 5 and stats.token_requests == 1
    assert stats.by_path["GET /latest/meta-data/instance-id"] == 3
    assert stats.by_path["PUT /latest/api/token"] == 1
    assert stats.by_status == {200: 4, 404: 1}
    assert stats.connections == 2  # one for the token, one kept alive for four GETs
    sim.reset_stats()
    assert sim.stats.requests == 0 and not sim.stats.by_path


def test_keep_alive_clients_cost_well_under_a_millisecond_per_request(sim: Simulator) -> None:
    sim.keep_alive = True
    tok = token(sim)
    sim.reset_stats()
    paths = [MD + p for p in ("ami-id", "instance-id", "iam/info", "tags/instance/", "mac")]
    errors: List[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection(sim.host, sim.port, timeout=5)
        for i in range(19):
            status = call(sim, "GET", paths[i % len(paths)], {TOKEN: tok}, conn=conn)[0]
            if status != 200:
                errors.append(str(status))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = sim.stats
    assert errors == []
    assert (stats.requests, stats.connections) == (152, 8)
    # CPU, not wall time: in-process client threads make the server wait for the GIL.
    assert stats.server_cpu_time / stats.requests < 0.001
    sim.reset_stats()
    conn = http.client.HTTPConnection(sim.host, sim.port, timeout=5)
    for path in paths * 10:
        call(sim, "GET", path, {TOKEN: tok}, conn=conn)
    conn.close()
    assert sim.stats.server_time / sim.stats.requests < 0.001


# -- instance files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"meta-data": {"ami-id": 5}}, "meta-data/ami-id"),
        ({"meta-data": {"x": ["a", None]}}, "meta-data/x[1]"),
        ({"meta-data": {"x": {"$base64": "!!"}}}, "meta-data/x"),
        ({"meta-data": {"x": {"$json": 1, "$text": "y"}}}, "meta-data/x"),
        ({"meta-data": {"a/b": "c"}}, "meta-data"),
        ({"meta-data": {}, "ami-id": "x"}, "ami-id"),
        ({"dynamic": {}}, "meta-data"),
        ({"meta-data": {}, "user-data": {"a": "b"}}, "user-data"),
    ],
)
def test_load_instance_rejects_bad_data_naming_the_path(data: Dict[str, Any], where: str) -> None:
    with pytest.raises(ValueError) as info:
        load_instance(data)
    message = str(info.value)
    assert where in message and "\n" not in message


def test_load_instance_reports_unreadable_and_invalid_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"meta-data": {', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.json: invalid JSON at line 1"):
        load_instance(bad)
    with pytest.raises(ValueError, match="cannot read instance file"):
        load_instance(tmp_path / "missing.json")


def test_load_instance_default_and_custom_dicts_serve(tmp_path: Path) -> None:
    data = load_instance()
    assert data == load_instance(DEFAULT_INSTANCE_PATH)
    data["meta-data"]["instance-id"] = "i-custom"
    del data["user-data"]
    path = tmp_path / "inst.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with Simulator(instance=str(path)) as sim:
        assert text(sim, MD + "instance-id") == "i-custom"
        assert text(sim, "/latest/") == "dynamic\nmeta-data"
        assert get(sim, "/latest/user-data", token(sim))[0] == 404


# -- IPv6 -----------------------------------------------------------------------------------


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_loopback() -> None:
    with Simulator(host="::1") as sim:
        assert sim.url == f"http://[::1]:{sim.port}"
        conn = http.client.HTTPConnection("::1", sim.port, timeout=5)
        tok = call(sim, "PUT", "/latest/api/token", {TTL: "60"}, conn=conn)[2].decode()
        assert call(sim, "GET", MD + "ami-id", {TOKEN: tok}, conn=conn)[0] == 200
        conn.close()


# -- CLI ---------------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.Popen[str]:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.Popen(
        [sys.executable, "-m", "ec2_metadata_core.simulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_cli_serves_until_sigterm() -> None:
    proc = _cli("--port", "0", "--no-tags")
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout
    assert stdout is not None

    def pump() -> None:  # readline() with a timeout, via a queue
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        url = lines.get(timeout=20).strip()
        assert lines.get(timeout=5).strip() == f"export AWS_EC2_METADATA_SERVICE_ENDPOINT={url}"
        host, port = url[len("http://") :].rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.request("PUT", "/latest/api/token", headers={TTL: "60"})
        tok = conn.getresponse().read().decode()
        conn.request("GET", MD + "tags/instance/Name", headers={TOKEN: tok})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 404  # --no-tags took effect
        conn.request("GET", MD + "instance-id", headers={TOKEN: tok})
        assert conn.getresponse().read() == b"i-0123456789abcdef0"
        conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _cli_error(*args: str) -> str:
    proc = _cli(*args)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, (out, err)
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(PREFIX), err
    return err


def test_cli_bad_data_file_is_one_error_line(tmp_path: Path) -> None:
    bad = tmp_path / "inst.json"
    bad.write_text('{"meta-data": {"ami-id": 1}}', encoding="utf-8")
    assert "meta-data/ami-id" in _cli_error("--port", "0", "--data", str(bad))
    assert "cannot read" in _cli_error("--port", "0", "--data", str(tmp_path / "none.json"))


def test_cli_port_in_use_and_bad_option_are_one_error_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert "cannot listen" in _cli_error("--port", str(port))
    assert "--port" in _cli_error("--port", "http")


# -- pytest plugin ---------------------------------------------------------------------------


PLUGIN = "ec2_metadata_core.simulator.pytest_plugin"


def test_plugin_is_opt_in_not_an_entry_point() -> None:
    """Installing the library must not add a plugin to other projects' pytest runs."""
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        entry_points = distribution("ec2-metadata-core").entry_points
    except PackageNotFoundError:
        pytest.skip("package not installed")
    assert [ep.value for ep in entry_points if ep.group == "pytest11"] == []


def test_an_unrelated_project_sees_no_fixture_until_it_asks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    assert True\n")
    plain = pytester.runpytest_subprocess("--fixtures")
    assert "imds_simulator" not in plain.stdout.str()
    opted = pytester.runpytest_subprocess("--fixtures", "-p", PLUGIN)
    opted.stdout.fnmatch_lines(["imds_simulator*"])


@pytest.fixture
def plugin_args(monkeypatch: pytest.MonkeyPatch) -> List[str]:
    """Load only our plugin in inner runs: fast, and independent of what else is installed."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return ["-p", PLUGIN, "-p", "no:cacheprovider"]


USER_TESTS = """
import json, os, urllib.request
import pytest

def fetch(url, path):
    put = urllib.request.Request(url + "/latest/api/token", method="PUT",
                                 headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    tok = urllib.request.urlopen(put).read().decode()
    req = urllib.request.Request(url + path, headers={"X-aws-ec2-metadata-token": tok})
    try:
        return urllib.request.urlopen(req).read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code

def test_endpoint(imds_simulator):
    assert os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"] == imds_simulator.url
    assert "AWS_EC2_METADATA_DISABLED" not in os.environ
    url = os.environ["AWS_EC2_METADATA_SERVICE_ENDPOINT"]
    assert fetch(url, "/latest/meta-data/instance-id") == EXPECTED_ID

@pytest.mark.imds_simulator(tags_enabled=False)
def test_marker_knobs(imds_simulator):
    assert fetch(imds_simulator.url, "/latest/meta-data/tags/instance/Name") == 404

def test_factory(imds_simulator_factory):
    a = imds_simulator_factory()
    b = imds_simulator_factory(imdsv1=True)
    assert a.url != b.url and b.imdsv1
    assert fetch(b.url, "/latest/meta-data/instance-type") == "m5.large"
"""


def test_fixtures_in_a_user_test_run(
    pytester: pytest.Pytester, plugin_args: List[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    pytester.makepyfile(USER_TESTS.replace("EXPECTED_ID", "'i-0123456789abcdef0'"))
    result = pytester.runpytest(*plugin_args)
    result.assert_outcomes(passed=3)
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"  # restored after the run


def test_fixture_instance_from_option_and_ini(
    pytester: pytest.Pytester, plugin_args: List[str]
) -> None:
    data = load_instance()
    data["meta-data"]["instance-id"] = "i-fromfile"
    pytester.makefile(".json", inst=json.dumps(data))
    pytester.makepyfile(USER_TESTS.replace("EXPECTED_ID", "'i-fromfile'"))
    result = pytester.runpytest(*plugin_args, "--imds-instance", "inst.json")
    result.assert_outcomes(passed=3)
    pytester.makeini("[pytest]\nimds_instance = inst.json\n")
    result = pytester.runpytest(*plugin_args)
    result.assert_outcomes(passed=3)
    result = pytester.runpytest(*plugin_args, "--imds-instance", "missing.json")
    result.assert_outcomes(errors=2, failed=1)  # the factory fails inside the test body
    result.stdout.fnmatch_lines(["*imds simulator: *missing.json: cannot read instance file*"])
