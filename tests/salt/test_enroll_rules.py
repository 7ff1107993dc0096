"""The enrollment rules of saltext.imds_ec2.enroll, one by one, on simulator-signed documents.

The key store and cache are small in-memory stand-ins with the interface the
engine's SaltKeys and Salt's cache give; tests/salt/test_salt_enroll.py runs
the same rules in a real master.
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, Optional

import pytest

from ec2_metadata_core.simulator import Simulator
from ec2_metadata_core.simulator.signing import default_signer
from saltext.imds_ec2.enroll import BANK, Enroller, Policy, clean_key, fingerprint, make_proof

NOW = datetime.datetime(2026, 12, 2, 12, 0, 0, tzinfo=datetime.timezone.utc)
KEY = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END PUBLIC KEY-----\n"
FINGER = fingerprint(clean_key(KEY).encode())


class Keys:
    def __init__(self) -> None:
        self.pending: Dict[str, str] = {}
        self.accepted: Dict[str, str] = {}
        self.rejected: Dict[str, str] = {}
        self.swap: Dict[str, str] = {}

    def pending_fingerprint(self, minion_id: str) -> Optional[str]:
        return self.pending.get(minion_id)

    def accepted_fingerprint(self, minion_id: str) -> Optional[str]:
        return self.accepted.get(minion_id)

    def accept(self, minion_id: str) -> None:
        self.accepted[minion_id] = self.pending.pop(minion_id)
        self.accepted.update(self.swap)  # a key replaced between the checks and the accept

    def reject(self, minion_id: str) -> None:
        self.rejected[minion_id] = self.accepted.pop(minion_id)


class Memory:
    def __init__(self) -> None:
        self.banks: Dict[str, Dict[str, Any]] = {}

    def fetch(self, bank: str, key: str) -> Any:
        return self.banks.get(bank, {}).get(key, {})

    def store(self, bank: str, key: str, data: Any) -> None:
        self.banks.setdefault(bank, {})[key] = data


@pytest.fixture(scope="module")
def trust() -> str:
    signer = default_signer()
    assert signer is not None
    return signer.certificate_pem


def proof(minion_id: str = "i-0123456789abcdef0", **document: Any) -> Dict[str, str]:
    fields = {
        "accountId": "123456789012",
        "availabilityZone": "eu-central-1b",
        "imageId": "ami-0a1b2c3d4e5f67890",
        "instanceId": "i-0123456789abcdef0",
        "pendingTime": "2026-12-02T11:58:00Z",
        "region": "eu-central-1",
    }
    fields.update(document)
    with Simulator() as sim:
        sim.set("dynamic/instance-identity/document", {"$json": fields})
        from ec2_metadata_core.client import IMDSClient
        from ec2_metadata_core.config import Settings

        client = IMDSClient(settings=Settings(endpoint=sim.url))
        names = ("document", "signature", "rsa2048")
        bodies = client.get_many("dynamic/instance-identity/" + n for n in names)
        client.close()
    return make_proof(minion_id, KEY, bodies)


def enroller(trust: str, **config: Any) -> Enroller:
    options = {"accounts": ["123456789012"], "trust": [trust]}
    options.update(config)
    keys = Keys()
    keys.pending["i-0123456789abcdef0"] = FINGER
    return Enroller(Policy.from_config(options), keys, Memory())


def test_a_good_proof_is_accepted_and_remembered(trust: str) -> None:
    machine = enroller(trust)
    decision = machine.decide(proof(), now=NOW)
    assert decision.accepted, decision
    assert machine.keys.accepted_fingerprint("i-0123456789abcdef0") == FINGER
    assert machine.memory.fetch(BANK, "i-0123456789abcdef0")["fingerprint"] == FINGER


@pytest.mark.parametrize(
    "config, document, reason",
    [
        ({"regions": ["us-east-1"]}, {}, "region 'eu-central-1' is not allowed"),
        ({"availability_zones": ["eu-central-1a"]}, {}, "availability zone 'eu-central-1b'"),
        ({"image_ids": ["ami-0ffffffffffffffff"]}, {}, "image 'ami-0a1b2c3d4e5f67890'"),
        ({}, {"pendingTime": "2026-12-02T12:30:00Z"}, "pendingTime 2026-12-02T12:30:00Z is in"),
        ({"max_age": 60}, {}, "stale pendingTime 2026-12-02T11:58:00Z (120 s old, max_age 60)"),
        ({}, {"pendingTime": "yesterday"}, "malformed pendingTime 'yesterday'"),
        ({}, {"instanceId": "i-../../etc"}, "malformed instanceId"),
    ],
)
def test_each_rule_refuses_with_its_reason(
    trust: str, config: Dict[str, Any], document: Dict[str, str], reason: str
) -> None:
    machine = enroller(trust, **config)
    decision = machine.decide(proof(**document), now=NOW)
    assert not decision.accepted
    assert decision.reason.startswith(reason), decision
    assert machine.keys.pending  # still pending
    assert "\n" not in decision.line()


def test_a_minion_id_pattern_holds_the_instance_id(trust: str) -> None:
    machine = enroller(trust, minion_id="web-{instance_id}")
    machine.keys.pending["web-i-0123456789abcdef0"] = FINGER
    assert machine.decide(proof("web-i-0123456789abcdef0"), now=NOW).accepted
    refused = machine.decide(proof("i-0123456789abcdef0"), now=NOW)
    assert refused.reason == "minion id is not 'web-i-0123456789abcdef0' (the instance's)"


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"id": "*"}, "malformed proof: no valid minion id"),
        ({"id": "a\nb"}, "malformed proof: no valid minion id"),
        ({"fingerprint": "ab:cd"}, "malformed proof: no valid key fingerprint"),
        ({"document": 7}, "malformed proof: document is not text"),
        ({"signature": None, "rsa2048": None}, "no signature given"),
    ],
)
def test_malformed_proofs(trust: str, change: Dict[str, Any], reason: str) -> None:
    decision = enroller(trust).decide(dict(proof(), **change), now=NOW)
    assert not decision.accepted and decision.reason.startswith(reason), decision
    assert "\n" not in decision.line()
    assert (
        enroller(trust)
        .decide(["not", "a", "mapping"], now=NOW)
        .reason.startswith("malformed proof: not a JSON object")
    )


@pytest.mark.parametrize(
    "config, message",
    [
        ({}, "accounts: required"),
        ({"accounts": "1", "minion_id": "web"}, "minion_id: must be a string containing"),
        ({"accounts": "1", "minion_id": "{instance_id}-{x}"}, "minion_id: only {instance_id}"),
        ({"accounts": "1", "max_age": -1}, "max_age: expected a number of seconds"),
        ({"accounts": "1", "max_age": True}, "max_age: expected a number of seconds"),
        ({"accounts": [1]}, "accounts: expected a list of strings"),
        ({"accounts": "1", "colour": "red"}, "unknown option(s): colour"),
        ({"accounts": "1", "trust": ["/nonexistent.pem"]}, "trust: /nonexistent.pem: cannot read"),
    ],
)
def test_bad_engine_options_are_named(config: Dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Policy.from_config(config)
    assert str(caught.value).startswith(message), caught.value


def test_a_key_swapped_during_acceptance_is_rejected_not_deleted(trust: str) -> None:
    machine = enroller(trust)
    other = fingerprint(b"another key")
    machine.keys.swap["i-0123456789abcdef0"] = other
    decision = machine.decide(proof(), now=NOW)
    assert not decision.accepted
    assert decision.reason == "the accepted key's fingerprint is not the proof's; rejected"
    assert machine.keys.rejected == {"i-0123456789abcdef0": other}
    assert machine.memory.fetch(BANK, "i-0123456789abcdef0") == {}


def test_the_minion_command_fails_in_one_line(tmp_path: Any) -> None:
    import subprocess
    import sys

    missing = str(tmp_path / "missing.pub")
    module = [sys.executable, "-m", "saltext.imds_ec2.enroll"]
    done = subprocess.run(
        [*module, "--id", "i-0123456789abcdef0", "--public-key", missing],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line == "enroll: error: --public-key {}: No such file or directory".format(missing)


@pytest.mark.parametrize(
    "major, config, message",
    [
        (3007, {"accounts": "1"}, "needs Salt 3008 or later on the master"),
        (3008, {}, "accounts: required (the AWS account ids whose instances may enroll)"),
        (3008, {"accounts": "1", "hook": "a b"}, "hook: expected a URL path under /hook/"),
    ],
)
def test_the_engine_does_not_start_on_what_it_cannot_serve(
    monkeypatch: Any, caplog: Any, major: int, config: Dict[str, Any], message: str
) -> None:
    import salt.version

    from saltext.imds_ec2 import enroll

    class Version:
        pass

    version = Version()
    version.major = major  # type: ignore[attr-defined]
    monkeypatch.setattr(salt.version, "__saltstack_version__", version)
    with caplog.at_level("ERROR", logger="saltext.imds_ec2.enroll"):
        enroll.serve({"sock_dir": "/nonexistent"}, config)  # returns: it never listens
    assert caplog.messages == ["imds_ec2 enroll: not started: " + message]
