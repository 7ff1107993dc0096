"""imds.ec2.ec2_metadata_facts run by ansible-playbook on bare target Pythons, on the simulator.

The collection is the built tarball installed with ansible-galaxy; each target
host is this machine over the local connection with one of the target
Pythons as its interpreter, none of which has requests or ec2_metadata_core.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Callable, Dict

import pytest
from imds_ansible_env import TARGET_VERSIONS, Run, local_inventory

from ec2_metadata_core.simulator import Simulator

pytestmark = pytest.mark.slow

MAC = "02:1a:2b:3c:4d:5e"
SECRETS = (
    "ASIASIMULATORKEY",
    "simulator-secret",
    "simulator-session-token",
    "simulator-user-data-secret",
)

# Gathers with the module's options from extra vars, then writes what the
# tests check, per host, to dump/<host>.json.
GATHER_PLAY = """
- hosts: targets
  gather_facts: false
  tasks:
    - name: Which Python runs the modules
      ansible.builtin.setup:
        gather_subset: ["!all", "!min", "python"]
    - name: Gather EC2 metadata
      imds.ec2.ec2_metadata_facts: "{{ module_args | default({}) }}"
    - name: The facts playbooks read
      ansible.builtin.assert:
        that:
          - ansible_facts.ec2.region == 'eu-central-1'
          - ansible_facts.ec2.tags['aws:autoscaling:groupName'] == 'web-asg'
          - ansible_facts.ec2.network_interfaces[ansible_facts.ec2.mac].subnet_id
              is match('subnet-')
    - name: Keep them for the test
      ansible.builtin.copy:
        dest: "{{ dump }}/{{ inventory_hostname }}.json"
        content: "{{ {'python': ansible_facts.python.version, 'facts': ansible_facts} | to_json }}"
        mode: "0600"
      check_mode: false
"""


def host_name(version: str) -> str:
    return "py" + version.replace(".", "_")


@pytest.fixture
def gather(
    run_ansible: Callable[..., Run], write: Callable[[str, str], Path], tmp_path: Path
) -> Callable[..., Run]:
    """``gather(hosts, *ansible_playbook_args, module_args={...})`` runs GATHER_PLAY."""
    playbook = write("gather.yml", GATHER_PLAY)

    def run(hosts: Dict[str, Path], *args: str, **module_args: Any) -> Run:
        inventory = write("hosts.ini", local_inventory(hosts))
        extra = json.dumps({"module_args": module_args, "dump": str(tmp_path / "dump")})
        return run_ansible(
            "ansible-playbook", "-i", str(inventory), str(playbook), "-e", extra, *args
        )

    return run


def test_target_pythons_are_bare(
    pythons: Dict[str, Path], ansible_env: Dict[str, str], tmp_path: Path
) -> None:
    """No target has the core, the oldest not even requests: the module brings its client."""
    env = {k: v for k, v in ansible_env.items() if k != "PYTHONPATH"}  # without the poison

    def importable(python: Path, module: str) -> bool:
        probe = subprocess.run(
            [str(python), "-c", "import " + module],
            cwd=str(tmp_path),
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        return probe.returncode == 0

    assert not importable(pythons["3.8"], "requests")
    assert importable(pythons["3.8"], "json")
    for python in pythons.values():
        assert not importable(python, "ec2_metadata_core"), python


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
def test_facts_on_every_target_python(
    imds_simulator: Simulator,
    gather: Callable[..., Run],
    pythons: Dict[str, Path],
    dumped: Callable[[str], Any],
    check_mode: bool,
) -> None:
    hosts = {host_name(version): pythons[version] for version in TARGET_VERSIONS}
    result = gather(hosts, *(["--check"] if check_mode else []))
    assert result.returncode == 0, result.output
    for version in TARGET_VERSIONS:
        data = dumped(host_name(version) + ".json")
        assert "{major}.{minor}".format(**data["python"]) == version
        ec2 = data["facts"]["ec2"]
        assert ec2["region"] == "eu-central-1"
        assert ec2["availability_zone"] == "eu-central-1b"
        assert ec2["tags"]["aws:autoscaling:groupName"] == "web-asg"
        assert ec2["network_interfaces"][MAC]["subnet_id"] == "subnet-0a1b2c3d4e5f60001"
        assert ec2["iam_role_names"] == ["web-app-role"]


def test_options_override_the_environment(
    imds_simulator_factory: Callable[..., Simulator],
    gather: Callable[..., Run],
    pythons: Dict[str, Path],
    dumped: Callable[[str], Any],
) -> None:
    """The AWS variable points at a dead port (conftest); the endpoint option wins."""
    sim = imds_simulator_factory()
    sim.set("meta-data/instance-type", "c7g.xlarge")
    result = gather(
        {"py3_8": pythons["3.8"]}, endpoint=sim.url, timeout=2, attempts=2, token_ttl=60
    )
    assert result.returncode == 0, result.output
    assert dumped("py3_8.json")["facts"]["ec2"]["instance_type"] == "c7g.xlarge"


def test_secrets_absent_by_default(
    imds_simulator: Simulator,
    gather: Callable[..., Run],
    pythons: Dict[str, Path],
    dumped: Callable[[str], Any],
) -> None:
    result = gather({"py3_8": pythons["3.8"]}, "-vv", legacy_facts=True)
    assert result.returncode == 0, result.output
    facts = dumped("py3_8.json")["facts"]
    assert "iam_security_credentials" not in facts["ec2"]
    assert "user_data" not in facts["ec2"]
    everything = json.dumps(facts) + result.output
    for secret in SECRETS:
        assert secret not in everything


def test_secrets_present_when_asked_and_censored_in_output(
    imds_simulator: Simulator,
    gather: Callable[..., Run],
    pythons: Dict[str, Path],
    dumped: Callable[[str], Any],
) -> None:
    result = gather(
        {"py3_8": pythons["3.8"]},
        "-vv",
        include_secrets=True,
        include_user_data=True,
        legacy_facts=True,
    )
    assert result.returncode == 0, result.output
    facts = dumped("py3_8.json")["facts"]
    ec2 = facts["ec2"]
    assert ec2["iam_security_credentials"]["AccessKeyId"] == "ASIASIMULATORKEY0001"
    assert ec2["identity_credentials_ec2"]["AccessKeyId"] == "ASIASIMULATORKEY0002"
    assert "simulator-user-data-secret" in ec2["user_data"]["content"]
    assert "simulator-user-data-secret" in facts["ec2_user_data"]
    role_secret = "ec2_iam_security_credentials_web_app_role_secretaccesskey"
    assert facts[role_secret].startswith("simulator-secret")
    assert "censored" in result.output
    for secret in SECRETS:
        assert secret not in result.output


def test_legacy_facts_keep_amazon_aws_playbooks_working(
    imds_simulator: Simulator,
    run_ansible: Callable[..., Run],
    write: Callable[[str, str], Path],
    pythons: Dict[str, Path],
) -> None:
    """The names a playbook written for amazon.aws.ec2_metadata_facts reads."""
    inventory = write("hosts.ini", local_inventory({"py3_8": pythons["3.8"]}))
    playbook = write(
        "legacy.yml",
        """
- hosts: targets
  gather_facts: false
  tasks:
    - imds.ec2.ec2_metadata_facts:
        legacy_facts: true
        metadata_token_ttl_seconds: 240
    - ansible.builtin.assert:
        that:
          - ansible_ec2_placement_availability_zone == 'eu-central-1b'
          - ansible_ec2_placement_region == 'eu-central-1'
          - ansible_ec2_instance_id == 'i-0123456789abcdef0'
          - ansible_ec2_instance_type == 'm5.large'
          - ansible_ec2_network_interfaces_macs_02_1a_2b_3c_4d_5e_subnet_id
              == 'subnet-0a1b2c3d4e5f60001'
          - ansible_ec2_security_groups == 'web-sg,ssh-from-bastion'
          - ansible_ec2_instance_identity_document_accountid == '123456789012'
          - ansible_ec2_iam_instance_profile_role == 'web-app-role'
          - ansible_ec2_instance_tags['aws:autoscaling:groupName'] == 'web-asg'
          - ansible_ec2_instance_tags.Role == 'web'
          - ansible_ec2_tags_instance_aws_autoscaling_groupName == 'web-asg'
          - "'Role' in ansible_ec2_instance_tags_keys"
          - ansible_ec2_public_key is match('ssh-ed25519 ')
          - ansible_ec2_user_data is not defined
          - ansible_facts.ec2.region == 'eu-central-1'
""",
    )
    result = run_ansible("ansible-playbook", "-i", str(inventory), str(playbook))
    assert result.returncode == 0, result.output


def test_gathered_with_setup_through_facts_modules(
    imds_simulator: Simulator,
    run_ansible: Callable[..., Run],
    write: Callable[[str, str], Path],
    pythons: Dict[str, Path],
) -> None:
    inventory = write("hosts.ini", local_inventory({"py3_8": pythons["3.8"]}))
    playbook = write(
        "facts_modules.yml",
        """
- hosts: targets
  gather_facts: true
  module_defaults:
    imds.ec2.ec2_metadata_facts:
      legacy_facts: true
  tasks:
    - ansible.builtin.assert:
        that:
          - ansible_facts.ec2.region == 'eu-central-1'
          - ansible_facts.ec2.tags.Role == 'web'
          - ansible_ec2_placement_availability_zone == 'eu-central-1b'
          - ansible_facts.python.version.major == 3
          - ansible_facts.python.version.minor == 8
          - ansible_facts.system is defined
""",
    )
    facts_modules = {"ANSIBLE_FACTS_MODULES": "ansible.builtin.setup,imds.ec2.ec2_metadata_facts"}
    result = run_ansible("ansible-playbook", "-i", str(inventory), str(playbook), env=facts_modules)
    assert result.returncode == 0, result.output
    check = run_ansible(
        "ansible-playbook", "-i", str(inventory), str(playbook), "--check", env=facts_modules
    )
    assert check.returncode == 0, check.output


FAILING_PLAY = """
- hosts: targets
  gather_facts: false
  tasks:
    - imds.ec2.ec2_metadata_facts: "{{ module_args | default({}) }}"
      register: gathered
      ignore_errors: true
    - ansible.builtin.copy:
        dest: "{{ dump }}/{{ inventory_hostname }}.json"
        content: "{{ gathered | to_json }}"
        mode: "0600"
"""


@pytest.fixture
def gather_failing(
    run_ansible: Callable[..., Run],
    write: Callable[[str, str], Path],
    pythons: Dict[str, Path],
    tmp_path: Path,
    dumped: Callable[[str], Any],
) -> Callable[..., Dict[str, Any]]:
    """Runs FAILING_PLAY on Python 3.8; returns the module's registered result."""
    inventory = write("hosts.ini", local_inventory({"py3_8": pythons["3.8"]}))
    playbook = write("failing.yml", FAILING_PLAY)

    def run(env: Dict[str, str], **module_args: Any) -> Dict[str, Any]:
        extra = json.dumps({"module_args": module_args, "dump": str(tmp_path / "dump")})
        result = run_ansible(
            "ansible-playbook", "-i", str(inventory), str(playbook), "-e", extra, env=env
        )
        assert result.returncode == 0, result.output  # the failure was ignored and recorded
        assert "Traceback" not in result.output
        gathered: Dict[str, Any] = dumped("py3_8.json")
        return gathered

    return run


def test_refused_endpoint_fails_naming_the_cause(
    gather_failing: Callable[..., Dict[str, Any]],
) -> None:
    # conftest points the AWS variable at 127.0.0.1:9, where nothing listens.
    gathered = gather_failing({})
    assert gathered["failed"] is True
    message = gathered["msg"]
    assert message.startswith("cannot read EC2 instance metadata: cannot reach IMDS at 127.0.0.1:9")
    assert "Connection refused" in message
    assert message.endswith("(not on EC2, or the metadata endpoint is wrong or turned off)")
    assert "\n" not in message
    assert "ansible_facts" not in gathered


def test_https_endpoint_on_plain_http_fails_in_one_line(
    imds_simulator_factory: Callable[..., Simulator],
    gather_failing: Callable[..., Dict[str, Any]],
) -> None:
    plain = imds_simulator_factory()
    https = plain.url.replace("http://", "https://")
    gathered = gather_failing({"AWS_EC2_METADATA_SERVICE_ENDPOINT": https}, attempts=1)
    assert gathered["failed"] is True
    message = gathered["msg"]
    assert message.startswith("cannot read EC2 instance metadata: cannot reach IMDS at 127.0.0.1:")
    assert "TLS handshake failed" in message and "use an http:// endpoint" in message
    assert "\n" not in message and "Module failed" not in message
    assert "ansible_facts" not in gathered


def test_silent_endpoint_fails_within_the_timeout_naming_the_cause(
    imds_simulator_factory: Callable[..., Simulator],
    gather_failing: Callable[..., Dict[str, Any]],
) -> None:
    silent = imds_simulator_factory(silent=True)
    gathered = gather_failing(
        {"AWS_EC2_METADATA_SERVICE_ENDPOINT": silent.url, "AWS_METADATA_SERVICE_TIMEOUT": "0.5"},
        attempts=1,
    )
    assert gathered["failed"] is True
    message = gathered["msg"]
    assert message.startswith("cannot read EC2 instance metadata: IMDS token request to ")
    assert "timed out after 1 attempt(s) of 0.5s: not on EC2" in message
    assert "\n" not in message


def test_disabled_by_the_aws_environment(
    imds_simulator: Simulator, gather_failing: Callable[..., Dict[str, Any]]
) -> None:
    gathered = gather_failing({"AWS_EC2_METADATA_DISABLED": "true"})
    assert gathered["failed"] is True
    assert "AWS_EC2_METADATA_DISABLED" in gathered["msg"]
    assert imds_simulator.stats.requests == 0
