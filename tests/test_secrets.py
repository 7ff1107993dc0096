"""No credential, session token or user data in any output unless the user asked for it.

Every way a value leaves the package is run against the simulator's default
instance, which holds IAM and identity credentials and user data with
distinctive fake values: the CLI (``dump`` in every format, ``get`` of every
name, its stderr with DEBUG logging on), the snapshot and the flat export,
the Ansible facts module and the Salt grains (in this process), the library's
DEBUG logs, exception messages, and the repr of every public object. Each
check also asks for the secrets and finds them, so none can pass by reading
nothing. ``tests/ansible/test_ansible_module.py`` (slow) runs the module
through ``ansible-playbook -vv``, where the action censors the result.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List

import pytest
import requests
from fault_support import (
    CREDENTIALS,
    USER_DATA_SECRET,
    ansible_facts_module,
    cli_error,
    grains_opts,
    run_ansible_module,
    run_cli,
)

from ec2_metadata_core import (
    EC2Metadata,
    IMDSError,
    InstanceTags,
    NetworkInterface,
    PublicKey,
    SpotInstanceAction,
    cli,
)
from ec2_metadata_core.compat import RequestsTransport
from ec2_metadata_core.flat import flatten, to_env
from ec2_metadata_core.sensitive import (
    SECRET_KEYS,
    SENSITIVE_KEYS,
    USER_DATA_KEY,
    is_secret_path,
)
from ec2_metadata_core.simulator import Simulator
from ec2_metadata_core.snapshot import snapshot, snapshot_keys
from ec2_metadata_core.transport import Job
from ec2_metadata_core.wire import StdlibTransport
from saltext.imds_ec2 import ec2 as grains_impl

ROLE_CREDENTIALS = "/latest/meta-data/iam/security-credentials/web-app-role"
# The identity credentials are a second, distinct set of the same shape.
IDENTITY_KEY = "ASIASIMULATORKEY0002"
CLI_FORMATS = ("json", "yaml", "flat", "env")


def issued_tokens(sim: Simulator) -> List[str]:
    """Every session token the simulator handed out (it keeps no public list)."""
    tokens = list(sim._tokens)
    assert all(isinstance(token, str) and len(token) > 20 for token in tokens)
    return tokens


def leaks(texts: Iterable[str], sim: Simulator, user_data: bool = True) -> List[str]:
    """The secrets (credentials, every token issued, user data) found in ``texts``."""
    secrets = [*CREDENTIALS, IDENTITY_KEY, *issued_tokens(sim)]
    if user_data:
        secrets.append(USER_DATA_SECRET)
    joined = "\n".join(texts)
    return [secret[:24] for secret in secrets if secret in joined]


def holds(text: str, credentials: bool, user_data: bool) -> None:
    """``text`` has the credentials and the user data exactly when asked for."""
    assert (CREDENTIALS[0] in text and IDENTITY_KEY in text) is credentials
    assert all(secret in text for secret in CREDENTIALS) is credentials
    assert (USER_DATA_SECRET in text) is user_data


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator() as simulator:
        yield simulator


@pytest.fixture(scope="module")
def facts_module(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return ansible_facts_module(tmp_path_factory.mktemp("collection"))


# -- the CLI -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", CLI_FORMATS)
def test_cli_dump_shows_secrets_only_when_asked(sim: Simulator, fmt: str) -> None:
    for flags, credentials, user_data in (
        ([], False, False),
        (["--include-secrets"], True, False),
        (["--include-user-data"], False, True),
        (["--include-secrets", "--include-user-data"], True, True),
    ):
        proc = run_cli("dump", "--format", fmt, "--endpoint", sim.url, *flags)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        holds(proc.stdout, credentials, user_data)
    assert not [token for token in issued_tokens(sim) if token in proc.stdout]


def test_cli_get_of_every_name_shows_a_secret_only_when_named(
    sim: Simulator, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    plain = [k for k in snapshot_keys() if k not in SECRET_KEYS and k != USER_DATA_KEY]
    assert len(plain) >= 40  # every metadata value a user can name
    outputs = []
    for name in plain:
        status = cli.main(["get", name, "--endpoint", sim.url])
        out, err = capsys.readouterr()
        assert status in (0, 3), (name, err)  # 3: absent on this instance
        outputs += [out, err]
    outputs += [record.getMessage() for record in caplog.records]
    assert "eu-central-1b" in "".join(outputs)
    assert leaks(outputs, sim) == []
    # Naming a secret is asking for it.
    for name, secret in (
        ("iam_security_credentials", CREDENTIALS[1]),
        ("identity-credentials-ec2", IDENTITY_KEY),
        ("iam_security_credentials.Token", CREDENTIALS[2]),
    ):
        assert cli.main(["get", name, "--endpoint", sim.url]) == 0
        assert secret in capsys.readouterr().out
    proc = run_cli("get", "user-data", "--endpoint", sim.url)
    assert USER_DATA_SECRET in proc.stdout


DEBUG_CLI = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)\n"
    "from ec2_metadata_core.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def test_cli_stderr_with_debug_logging_holds_no_secret(sim: Simulator) -> None:
    """A wrapper that turns on DEBUG logging sees retries and renewals, not values."""
    sim.add_fault(path=ROLE_CREDENTIALS, status=503, times=1)
    sim.add_fault(path="/latest/user-data", status=401, times=1)
    sim.add_fault(path="/latest/meta-data/identity-credentials/*", action="truncate", times=1)
    args = ["dump", "--endpoint", sim.url, "--include-secrets", "--include-user-data"]
    proc = run_python(DEBUG_CLI, *args)
    assert proc.returncode == 0, proc.stderr
    holds(proc.stdout, True, True)
    assert "retrying GET" in proc.stderr and "renewing the token" in proc.stderr
    assert leaks([proc.stderr], sim) == []


def test_cli_errors_about_secret_values_hold_no_secret(sim: Simulator) -> None:
    truncated = '{"AccessKeyId": "ASIASIMULATORKEY0001", "SecretAccessKey": "simulator-secret-'
    sim.set(ROLE_CREDENTIALS[len("/latest/") :], {"$text": truncated})
    line = cli_error(run_cli("dump", "--endpoint", sim.url, "--include-secrets"))
    assert "malformed JSON for meta-data/iam/security-credentials/web-app-role" in line
    sim.add_fault(path="/latest/user-data", action="truncate")
    line = cli_error(run_cli("get", "user-data", "--endpoint", sim.url))
    assert "user-data" in line
    proc = run_python(DEBUG_CLI, "dump", "--endpoint", sim.url, "--include-secrets")
    assert proc.returncode == 1
    assert leaks([line, proc.stdout, proc.stderr], sim) == []


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
    )


# -- the snapshot and the flat export --------------------------------------------------------


def test_snapshot_flat_and_env_export_hold_secrets_only_when_asked(sim: Simulator) -> None:
    for credentials, user_data in ((False, False), (True, False), (False, True), (True, True)):
        bodies: Dict[str, Any] = {}
        snap = snapshot(
            EC2Metadata(endpoint=sim.url),
            include_secrets=credentials,
            include_user_data=user_data,
            raw=bodies,
        )
        flat = flatten(snap)
        raw_text = "\n".join(
            body.decode("utf-8", "replace") for body in bodies.values() if body is not None
        )
        for text in (json.dumps(snap), json.dumps(flat), to_env(flat), raw_text):
            holds(text, credentials, user_data)
    plain = snapshot(EC2Metadata(endpoint=sim.url))
    assert leaks([json.dumps(plain), to_env(flatten(plain))], sim) == []


def test_one_definition_names_every_credential_path_the_model_reads() -> None:
    """sensitive.py is what snapshot, the Ansible action and legacy facts all use."""
    identity = vars(EC2Metadata)["identity_credentials_ec2"].item
    assert is_secret_path(identity)
    assert is_secret_path(EC2Metadata.role_credentials_path("web-app-role"))
    for plain in ("meta-data/iam/security-credentials/", "meta-data/iam/info", "user-data"):
        assert not is_secret_path(plain), plain
    assert SECRET_KEYS | {USER_DATA_KEY} == SENSITIVE_KEYS
    assert set(SECRET_KEYS) <= set(snapshot_keys(include_secrets=True))
    assert not SENSITIVE_KEYS & set(snapshot_keys())


# -- the Ansible module and the Salt grains, in this process -------------------------------------


def test_ansible_facts_module_output_holds_secrets_only_when_asked(
    sim: Simulator, facts_module: Any
) -> None:
    for legacy in (False, True):
        for credentials, user_data in ((False, False), (True, False), (False, True)):
            result = run_ansible_module(
                facts_module,
                endpoint=sim.url,
                include_secrets=credentials,
                include_user_data=user_data,
                legacy_facts=legacy,
            )
            assert "failed" not in result, result.get("msg")
            holds(json.dumps(result), credentials, user_data)
            if legacy and credentials:
                key = "ansible_ec2_iam_security_credentials_web_app_role_secretaccesskey"
                assert result["ansible_facts"][key].startswith(CREDENTIALS[1])
    plain = run_ansible_module(facts_module, endpoint=sim.url, legacy_facts=True)
    sim.add_fault(path=ROLE_CREDENTIALS, status=500)
    failed = run_ansible_module(
        facts_module, endpoint=sim.url, include_secrets=True, include_user_data=True, attempts=1
    )
    assert failed["failed"] is True and "web-app-role" in failed["msg"]
    assert leaks([json.dumps(plain), json.dumps(failed)], sim) == []


def test_salt_grains_and_their_logs_hold_secrets_only_when_configured(
    sim: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts = []
    for credentials, user_data in ((False, False), (True, False), (False, True)):
        grains_impl.forget_clients()
        opts = grains_opts(sim.url, tmp_path, {"include_user_data": user_data})
        opts["ec2_metadata"]["include_secrets"] = credentials
        got = grains_impl.grains(opts)
        assert got["ec2"]["region"] == "eu-central-1"
        holds(json.dumps(got), credentials, user_data)
        if not credentials and not user_data:
            texts.append(json.dumps(got))
    sim.add_fault(path=ROLE_CREDENTIALS, action="truncate")
    grains_impl.forget_clients()
    opts = grains_opts(sim.url, tmp_path, {"include_user_data": True, "attempts": 1})
    opts["ec2_metadata"]["include_secrets"] = True
    assert grains_impl.grains(opts) == {}
    grains_impl.forget_clients()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "web-app-role" in warnings[0]
    texts += [record.getMessage() for record in caplog.records]
    assert leaks(texts, sim) == []


# -- the library: logs, errors, reprs --------------------------------------------------------------


def test_library_logs_errors_and_reprs_hold_no_secret(
    sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sim.set(
        "meta-data/spot/instance-action",
        {"$json": {"action": "stop", "time": "2026-11-26T12:00:00Z"}},
    )
    sim.add_fault(path=ROLE_CREDENTIALS, status=429, times=1)
    sim.add_fault(path="/latest/user-data", status=401, times=1)
    sim.add_fault(path="/latest/meta-data/identity-credentials/*", action="reset", times=1)
    metadata = EC2Metadata(endpoint=sim.url)
    client = metadata.client
    full = snapshot(metadata, include_secrets=True, include_user_data=True)
    # The objects hold the secrets: their reprs must not show them.
    assert USER_DATA_SECRET.encode() in (metadata.user_data or b"")
    credentials = metadata.iam_security_credentials
    assert credentials is not None and credentials["SecretAccessKey"].startswith(CREDENTIALS[1])
    holds(json.dumps(full), True, True)
    token = client.tokens.get()
    assert token in issued_tokens(sim)

    errors: List[IMDSError] = []
    for path, fault in (
        (ROLE_CREDENTIALS, {"status": 500}),
        ("/latest/user-data", {"action": "truncate"}),
        (
            "/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance",
            {"body": '{"Token": "simulator-session-token-'},
        ),
    ):
        sim.faults.clear()
        sim.add_fault(path=path, **fault)
        try:
            snapshot(
                EC2Metadata(endpoint=sim.url, attempts=1),
                include_secrets=True,
                include_user_data=True,
            )
        except IMDSError as exc:
            errors.append(exc)
    sim.faults.clear()
    sim.add_fault(path="/latest/api/token", method="PUT", body="simulator-secret token")
    try:
        EC2Metadata(endpoint=sim.url, attempts=1).instance_id  # noqa: B018
    except IMDSError as exc:
        errors.append(exc)
    assert [type(e).__name__ for e in errors] == [
        "IMDSHTTPError",
        "IMDSUnavailableError",
        "MalformedResponseError",
        "TokenError",
    ]
    sim.faults.clear()

    session_client = EC2Metadata(requests.Session(), endpoint=sim.url)
    assert session_client.iam_security_credentials is not None
    tags = metadata.tags
    assert isinstance(tags, InstanceTags)
    interfaces = list(metadata.network_interfaces.values())
    keys = list(metadata.public_keys.values())
    notice = metadata.spot_instance_action
    assert isinstance(notice, SpotInstanceAction)
    assert all(isinstance(i, NetworkInterface) for i in interfaces)
    assert all(isinstance(k, PublicKey) for k in keys)
    token_answer = client.transport.send(
        Job("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"}), 1.0
    )
    assert token_answer.body.decode() in issued_tokens(sim)  # a Response holding a token
    things: List[Any] = [
        metadata,
        client,
        client.tokens,
        client.transport,
        client.settings,
        session_client,
        session_client.client.transport,
        tags,
        notice,
        token_answer,
        *interfaces,
        *keys,
        *errors,
    ]
    assert isinstance(client.transport, StdlibTransport)
    assert isinstance(session_client.client.transport, RequestsTransport)
    texts = [repr(thing) for thing in things] + [str(thing) for thing in things]
    texts += [record.getMessage() for record in caplog.records]
    assert any("retrying" in record.getMessage() for record in caplog.records)
    assert leaks(texts, sim) == []
