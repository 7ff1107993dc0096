"""Autoscaled minions accepted by proof: a real salt-master, salt-api and real minions.

Each minion runs on its own simulated instance. Its key stays pending (no
auto-accept: saltfactories' own accepting hook is replaced by one that does
nothing) until ``python -m saltext.imds_ec2.enroll --post`` sends its proof to
salt-api's webhook, where the ``imds_ec2_enroll`` engine decides. Legitimate
minions end up accepted and answering ``test.ping``; each forged, foreign,
stale, mismatched or misnamed one stays pending with one line in the master's
log naming why.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple

import pytest
import yaml
from readme_support import readme_block

from ec2_metadata_core.simulator import Simulator
from ec2_metadata_core.simulator.signing import IdentitySigner, default_signer

pytestmark = pytest.mark.slow

ACCOUNT = "123456789012"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "identity.md"
PATIENCE = 90.0


class Case(NamedTuple):
    minion_id: str
    instance_id: str
    account: str = ACCOUNT
    age: int = 5  # seconds since pendingTime
    forged: bool = False


CASES = {
    "good-1": Case("i-0a1a1a1a1a1a1a1a1", "i-0a1a1a1a1a1a1a1a1"),
    "good-2": Case("i-0b2b2b2b2b2b2b2b2", "i-0b2b2b2b2b2b2b2b2"),
    "forged": Case("i-0c3c3c3c3c3c3c3c3", "i-0c3c3c3c3c3c3c3c3", forged=True),
    "foreign": Case("i-0d4d4d4d4d4d4d4d4", "i-0d4d4d4d4d4d4d4d4", account="999988887777"),
    "stale": Case("i-0e5e5e5e5e5e5e5e5", "i-0e5e5e5e5e5e5e5e5", age=7200),
    "finger": Case("i-0f6f6f6f6f6f6f6f6", "i-0f6f6f6f6f6f6f6f6"),
    "misnamed": Case("web-7", "i-0a7a7a7a7a7a7a7a7"),
}
REASONS = {
    "forged": "bad signature: it does not verify with the certificate for eu-central-1",
    "foreign": "account '999988887777' is not allowed",
    "stale": "stale pendingTime",
    "finger": "the pending key's fingerprint is not the proof's",
    "misnamed": "minion id is not 'i-0a7a7a7a7a7a7a7a7' (the instance's)",
}


class Fleet(NamedTuple):
    master: Any
    minions: Dict[str, Any]
    sims: Dict[str, Simulator]
    hook: str
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def instance(sim: Simulator, case: Case) -> None:
    started = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=case.age)
    document = {
        "accountId": case.account,
        "architecture": "x86_64",
        "availabilityZone": "eu-central-1b",
        "imageId": "ami-0a1b2c3d4e5f67890",
        "instanceId": case.instance_id,
        "instanceType": "m5.large",
        "pendingTime": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "privateIp": "10.0.1.23",
        "region": "eu-central-1",
        "version": "2017-09-30",
    }
    sim.set("dynamic/instance-identity/document", {"$json": document})
    sim.set("meta-data/instance-id", case.instance_id)


def keys(master: Any) -> Dict[str, List[str]]:
    result = master.salt_key_cli().run("-L")
    assert result.returncode == 0, result
    data: Dict[str, List[str]] = result.data
    return data


def wait_for(what: str, check: Any) -> Any:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail("timed out waiting for " + what)


def decisions(log: Path, minion_id: str) -> List[str]:
    if not log.is_file():
        return []
    needle = "imds_ec2 enroll: "
    quoted = repr(minion_id)
    return [
        line[line.index(needle) :]
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
        if needle in line and (" {}: ".format(quoted)) in line
    ]


def enroll(fleet: Fleet, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    minion = fleet.minions[name]
    env = dict(os.environ, AWS_EC2_METADATA_SERVICE_ENDPOINT=fleet.sims[name].url)
    public_key = str(Path(minion.config["pki_dir"]) / "minion.pub")
    command = [sys.executable, "-m", "saltext.imds_ec2.enroll", "--id", minion.id]
    return subprocess.run(
        [*command, "--public-key", public_key, *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def post(hook: str, proof: Dict[str, Any]) -> None:
    request = urllib.request.Request(
        hook,
        data=json.dumps(proof).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory,
    _salt_factories_config: Dict[str, Any],
    event_listener: Any,
) -> Iterator[Fleet]:
    from saltfactories.manager import FactoriesManager

    settings = dict(_salt_factories_config)
    settings["root_dir"] = tmp_path_factory.mktemp("salt-enroll")
    factories = FactoriesManager(event_listener=event_listener, **settings)
    signer = default_signer()
    assert signer is not None
    trust = tmp_path_factory.mktemp("trust") / "simulator.pem"
    trust.write_text(signer.certificate_pem)
    other = IdentitySigner.generate()
    sims = {}
    for name, case in CASES.items():
        sims[name] = Simulator(signer=other if case.forged else True).start()
        instance(sims[name], case)
    port = free_port()
    try:
        # The master config of docs/identity.md, with a test port, no TLS, the simulator trusted.
        config = yaml.safe_load(readme_block(DOCS, "# /etc/salt/master.d/imds-enroll.conf"))
        api_config = config["rest_cherrypy"]
        for name in ("ssl_crt", "ssl_key"):
            del api_config[name]
        api_config.update(host="127.0.0.1", port=port, disable_ssl=True)
        (engine,) = config["engines"]
        engine["imds_ec2_enroll"]["trust"] = [str(trust)]
        master = factories.salt_master_daemon(
            "imds-enroll-master",
            overrides=config,
            # saltfactories accepts every pending key itself unless told otherwise.
            on_auth_event_callback=lambda _master, _payload: None,
        )
        api = master.salt_api_daemon()
        minions = {}
        for name, case in CASES.items():
            minion = master.salt_minion_daemon(
                case.minion_id,
                overrides={"ec2_metadata": {"endpoint": sims[name].url}},
            )
            # Started means "process up": a pending minion fires no start event.
            minion.get_check_events = lambda: []
            minions[name] = minion
        with master.started(), api.started():
            for minion in minions.values():
                minion.start()
            try:
                ids = {m.id for m in minions.values()}
                wait_for("every key pending", lambda: ids <= set(keys(master)["minions_pre"]))
                yield Fleet(
                    master,
                    minions,
                    sims,
                    "http://127.0.0.1:{}/hook/imds_ec2/enroll".format(port),
                    Path(master.config["log_file"]),
                )
            finally:  # in parallel: a minion takes seconds to stop
                stopping = [threading.Thread(target=m.terminate) for m in minions.values()]
                for thread in stopping:
                    thread.start()
                for thread in stopping:
                    thread.join()
    finally:
        for sim in sims.values():
            sim.stop()


@pytest.fixture(scope="module")
def enrolled(fleet: Fleet) -> Fleet:
    """Every minion has posted its proof once; the engine has logged every decision."""

    def engine_listens() -> bool:  # the engine starts after the master: probe until it answers
        post(fleet.hook, {"id": "probe"})
        time.sleep(1)
        return bool(decisions(fleet.log, "probe"))

    wait_for("the engine to listen", engine_listens)
    for name in CASES:
        if name == "finger":  # a proof naming another key's fingerprint
            made = enroll(fleet, name)
            assert made.returncode == 0, made.stderr
            proof = json.loads(made.stdout)
            other = json.loads(enroll(fleet, "good-1").stdout)["fingerprint"]
            post(fleet.hook, dict(proof, fingerprint=other))
            continue
        # The legitimate ones wait for their acceptance, as a boot script would.
        wait = ["--wait", "60"] if name.startswith("good") else []
        sent = enroll(fleet, name, "--post", fleet.hook, *wait)
        assert sent.returncode == 0, sent.stderr
        assert json.loads(sent.stdout) == {"success": True}
    for minion_id in (case.minion_id for case in CASES.values()):
        wait_for("a decision on " + minion_id, lambda i=minion_id: decisions(fleet.log, i))
    return fleet


def test_legitimate_minions_are_accepted_with_no_hand(enrolled: Fleet) -> None:
    good = sorted(CASES[n].minion_id for n in ("good-1", "good-2"))
    assert sorted(keys(enrolled.master)["minions"]) == good
    for name in ("good-1", "good-2"):
        (line,) = decisions(enrolled.log, CASES[name].minion_id)
        assert line.startswith(
            "imds_ec2 enroll: accepted {!r}: instance ".format(CASES[name].minion_id)
        )
        assert "of account 123456789012 in eu-central-1b" in line
    text = enrolled.log.read_text(encoding="utf-8", errors="replace")
    for secret in ("ASIASIMULATORKEY", "simulator-secret", "simulator-session-token"):
        assert secret not in text
    cli = enrolled.master.salt_cli(timeout=60)
    answered = wait_for(
        "the accepted minions to answer",
        lambda: (lambda r: r.data if r.returncode == 0 and len(r.data or {}) == 2 else None)(
            cli.run("test.ping", minion_tgt="i-0*")
        ),
    )
    assert answered == {m: True for m in good}


@pytest.mark.parametrize("name", sorted(REASONS))
def test_each_bad_proof_stays_pending_with_one_line(enrolled: Fleet, name: str) -> None:
    minion_id = CASES[name].minion_id
    assert minion_id in keys(enrolled.master)["minions_pre"]
    (line,) = decisions(enrolled.log, minion_id)
    assert line.startswith("imds_ec2 enroll: refused {!r}: {}".format(minion_id, REASONS[name]))


def test_the_same_key_again_is_a_no_op(enrolled: Fleet) -> None:
    minion_id = CASES["good-2"].minion_id
    sent = enroll(enrolled, "good-2", "--post", enrolled.hook)
    assert sent.returncode == 0, sent.stderr
    lines = wait_for("a second decision", lambda: decisions(enrolled.log, minion_id)[1:])
    assert lines == [
        "imds_ec2 enroll: accepted {!r}: {} already enrolled with this key".format(
            minion_id, minion_id
        )
    ]
    assert minion_id in keys(enrolled.master)["minions"]


def test_a_second_key_for_an_enrolled_instance_stays_pending(enrolled: Fleet) -> None:
    """Trust on first use: a copied document cannot enroll another key for its instance."""
    minion = enrolled.minions["good-1"]
    minion_id = minion.id
    minion.terminate()
    deleted = enrolled.master.salt_key_cli().run("-d", minion_id, "--yes")
    assert deleted.returncode == 0, deleted
    for name in ("minion.pem", "minion.pub"):  # the replacement has a key of its own
        (Path(minion.config["pki_dir"]) / name).unlink()
    minion.start()
    wait_for("the new key pending", lambda: minion_id in keys(enrolled.master)["minions_pre"])
    sent = enroll(enrolled, "good-1", "--post", enrolled.hook)
    assert sent.returncode == 0, sent.stderr
    lines = wait_for("a decision on the new key", lambda: decisions(enrolled.log, minion_id)[1:])
    assert lines == [
        "imds_ec2 enroll: refused {!r}: instance {} enrolled before with another key".format(
            minion_id, minion_id
        )
    ]
    assert minion_id in keys(enrolled.master)["minions_pre"]


def test_the_minion_side_proof_carries_the_key_salt_key_shows(enrolled: Fleet) -> None:
    made = enroll(enrolled, "stale")
    assert made.returncode == 0, made.stderr
    proof = json.loads(made.stdout)
    finger = enrolled.master.salt_key_cli().run("-f", proof["id"])
    assert finger.returncode == 0, finger
    assert finger.data["minions_pre"][proof["id"]] == proof["fingerprint"]
    assert set(proof) == {"id", "fingerprint", "document", "signature", "rsa2048"}


def test_waiting_for_a_refused_key_ends_in_one_line(enrolled: Fleet) -> None:
    """Last in the file: it posts the foreign proof again (more refusal lines)."""
    sent = enroll(enrolled, "foreign", "--post", enrolled.hook, "--wait", "3")
    assert sent.returncode == 1 and sent.stdout == ""
    assert sent.stderr == "enroll: error: not accepted after 3 s: see the master's log\n"
    assert CASES["foreign"].minion_id in keys(enrolled.master)["minions_pre"]
