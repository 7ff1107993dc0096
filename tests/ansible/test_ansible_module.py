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


# A user variable named ec2 (host_vars) and the fact: both survive, under their own names.
USER_EC2_PLAY = """
- hosts: targets
  gather_facts: "{{ via_facts_modules | default(false) | bool }}"
  module_defaults:
    imds.ec2.ec2_metadata_facts:
      legacy_facts: true
  tasks:
    - name: Gather (unless the play's fact gathering did)
      imds.ec2.ec2_metadata_facts:
      when: not (via_facts_modules | default(false) | bool)
    - ansible.builtin.assert:
        that:
          - "ec2 == {'owner': 'team-a', 'budget': 12}"
          - ansible_facts.ec2.region == 'eu-central-1'
          - ansible_ec2.region == 'eu-central-1'
          - ansible_ec2.tags.Role == 'web'
          - ansible_ec2_placement_region == 'eu-central-1'
          - ansible_facts.ec2_placement_region == 'eu-central-1'
          - hostvars[inventory_hostname].ec2.owner == 'team-a'
"""


@pytest.mark.parametrize("via_facts_modules", [False, True], ids=["task", "facts-modules"])
def test_a_user_variable_named_ec2_is_left_alone(
    imds_simulator: Simulator,
    run_ansible: Callable[..., Run],
    write: Callable[[str, str], Path],
    pythons: Dict[str, Path],
    tmp_path: Path,
    via_facts_modules: bool,
) -> None:
    """The fact is ansible_facts.ec2 / ansible_ec2; host_vars' ``ec2`` keeps the user's dict."""
    (tmp_path / "inventory" / "host_vars").mkdir(parents=True)
    write("inventory/hosts.ini", local_inventory({"py3_8": pythons["3.8"]}))
    write("inventory/host_vars/py3_8.yml", "ec2:\n  owner: team-a\n  budget: 12\n")
    playbook = write("user_ec2.yml", USER_EC2_PLAY)
    env = {}
    if via_facts_modules:
        env["ANSIBLE_FACTS_MODULES"] = "ansible.builtin.setup,imds.ec2.ec2_metadata_facts"
    result = run_ansible(
        "ansible-playbook",
        "-i",
        str(tmp_path / "inventory"),
        str(playbook),
        "-e",
        json.dumps({"via_facts_modules": via_facts_modules}),
        env=env,
    )
    assert result.returncode == 0, result.output
    assert "failed=0" in result.output


# A fleet of hosts on and off EC2, gathered through ANSIBLE_FACTS_MODULES with
# off_ec2=ignore; each host's endpoint comes from its inventory variable.
MIXED_FLEET_PLAY = """
- hosts: targets
  gather_facts: true
  module_defaults:
    imds.ec2.ec2_metadata_facts:
      off_ec2: ignore
      endpoint: "{{ imds_endpoint }}"
      timeout: 0.5
      attempts: 1
  tasks:
    - ansible.builtin.copy:
        dest: "{{ dump }}/{{ inventory_hostname }}.json"
        content: "{{ {'ec2': ansible_facts.ec2, 'system': ansible_facts.system} | to_json }}"
        mode: "0600"
"""


def test_mixed_fleet_gathers_null_off_ec2_without_failing(
    imds_simulator: Simulator,
    imds_simulator_factory: Callable[..., Simulator],
    run_ansible: Callable[..., Run],
    write: Callable[[str, str], Path],
    pythons: Dict[str, Path],
    tmp_path: Path,
    dumped: Callable[[str], Any],
) -> None:
    silent = imds_simulator_factory(silent=True)
    endpoints = {
        "on_ec2": imds_simulator.url,
        "refused": "http://127.0.0.1:9",
        "silent": silent.url,
    }
    inventory = local_inventory({name: pythons["3.8"] for name in endpoints}) + "".join(
        "\n[{}]\n{} imds_endpoint={}\n".format("g_" + name, name, url)
        for name, url in endpoints.items()
    )
    write("hosts.ini", inventory)
    playbook = write("mixed.yml", MIXED_FLEET_PLAY)
    facts_modules = {"ANSIBLE_FACTS_MODULES": "ansible.builtin.setup,imds.ec2.ec2_metadata_facts"}
    result = run_ansible(
        "ansible-playbook",
        "-i",
        str(tmp_path / "hosts.ini"),
        str(playbook),
        "-e",
        json.dumps({"dump": str(tmp_path / "dump")}),
        env=facts_modules,
    )
    assert result.returncode == 0, result.output
    assert "failed=0" in result.output
    on_ec2 = dumped("on_ec2.json")
    assert on_ec2["ec2"]["region"] == "eu-central-1"
    for name in ("refused", "silent"):
        off = dumped(name + ".json")
        assert off["ec2"] is None, name
        assert off["system"] == "Linux"  # the setup facts are there too


@pytest.mark.parametrize("off_ec2", ["fail", "ignore"])
def test_an_imds_that_answers_then_fails_fails_the_task_either_way(
    imds_simulator_factory: Callable[..., Simulator],
    gather_failing: Callable[..., Dict[str, Any]],
    off_ec2: str,
) -> None:
    """Token granted, then 500 on every read: a failure, not "off EC2"."""
    failing = imds_simulator_factory()
    failing.error_rate = 1.0
    gathered = gather_failing({}, endpoint=failing.url, attempts=1, off_ec2=off_ec2)
    assert gathered["failed"] is True
    assert gathered["msg"].startswith("cannot read EC2 instance metadata: IMDS answered 500")
    assert "ansible_facts" not in gathered


def test_off_ec2_ignore_says_why_in_msg(gather_failing: Callable[..., Dict[str, Any]]) -> None:
    gathered = gather_failing({}, off_ec2="ignore")  # the refusing endpoint of conftest
    assert "failed" not in gathered or gathered["failed"] is False
    assert gathered["ansible_facts"] == {"ansible_ec2": None}  # ansible_facts.ec2 in plays
    assert gathered["msg"].startswith(
        "no EC2 instance metadata here: cannot reach IMDS at 127.0.0.1:9"
    )


def test_facts_modules_off_ec2_fails_with_one_line_by_default(
    run_ansible: Callable[..., Run],
    write: Callable[[str, str], Path],
    pythons: Dict[str, Path],
) -> None:
    """Off EC2 with the default off_ec2=fail the play fails naming the cause, no traceback.

    (ansible-core's gather_facts also prints the facts of the modules that
    worked with any failure; the README's mixed-fleet section says to use
    off_ec2=ignore, which test_mixed_fleet_* covers.)
    """
    inventory = write("hosts.ini", local_inventory({"py3_8": pythons["3.8"]}))
    playbook = write("gather.yml", "- hosts: targets\n  gather_facts: true\n  tasks: []\n")
    facts_modules = {"ANSIBLE_FACTS_MODULES": "ansible.builtin.setup,imds.ec2.ec2_metadata_facts"}
    result = run_ansible("ansible-playbook", "-i", str(inventory), str(playbook), env=facts_modules)
    assert result.returncode != 0
    assert "cannot read EC2 instance metadata: cannot reach IMDS at 127.0.0.1:9" in result.output
    assert "Traceback" not in result.output
