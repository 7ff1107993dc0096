"""imds.ec2.verified_identity: a controller verifies the hosts it gathered, with ansible-playbook.

Each host gathers with imds.ec2.ec2_metadata_facts from its own simulator: an
honest one signed with the key the controller trusts, a liar signed with
another key. A third host carries the facts of a real instance AWS signed (a
public rsa2048 blob, tests/data/aws-identity/README.md), verified with the
certificates the collection bundles, and a fourth the same facts with its
document edited. The collection is the built tarball, installed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
import yaml
from imds_ansible_env import Run, local_inventory
from readme_support import readme_block

from ec2_metadata_core.simulator import Simulator
from ec2_metadata_core.simulator.signing import IdentitySigner

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[1] / "data" / "aws-identity"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "identity.md"

PLAY = """
- hosts: gatherers
  gather_facts: false
  tasks:
    - name: Gather EC2 metadata
      imds.ec2.ec2_metadata_facts:
        endpoint: "{{ imds_endpoint }}"

- hosts: carriers
  gather_facts: false
  tasks:
    - name: Facts of a real instance, as a host would have gathered them
      ansible.builtin.set_fact:
        ec2: "{{ lookup('file', facts_file) | from_json }}"

- hosts: all
  gather_facts: false
  tasks:
    - name: Verify on the controller
      ansible.builtin.set_fact:
        verified: "{{ (ansible_facts.ec2 | default(ec2)) | imds.ec2.verified_identity(trust) }}"
    - name: Keep it for the test
      ansible.builtin.copy:
        dest: "{{ dump }}/{{ inventory_hostname }}.json"
        content: "{{ verified | to_json }}"
        mode: "0600"
"""


def test_a_controller_verifies_the_hosts_it_gathered(
    imds_simulator_factory: Callable[..., Simulator],
    run_ansible: Callable[..., Run],
    pythons: Dict[str, Path],
    write: Callable[[str, str], Path],
    dumped: Callable[[str], Any],
    tmp_path: Path,
) -> None:
    honest = imds_simulator_factory()
    liar = imds_simulator_factory(signer=IdentitySigner.generate())
    assert honest.signer is not None
    trust = write("simulator.pem", honest.signer.certificate_pem)
    blob = (DATA / "teleport-us-west-2.rsa2048").read_text()
    document = json.loads(
        '{"accountId" : "278576220453", "architecture" : "x86_64", '
        '"availabilityZone" : "us-west-2a", "billingProducts" : null, '
        '"devpayProductCodes" : null, "marketplaceProductCodes" : null, '
        '"imageId" : "ami-0fa9e1f64142cde17", "instanceId" : "i-078517ca8a70a1dde", '
        '"instanceType" : "t2.medium", "kernelId" : null, '
        '"pendingTime" : "2021-09-03T21:25:44Z", "privateIp" : "10.0.0.209", '
        '"ramdiskId" : null, "region" : "us-west-2", "version" : "2017-09-30"}'
    )
    real = {"instance_identity_document": document, "instance_identity_rsa2048": blob}
    edited = dict(real, instance_identity_document=dict(document, accountId="999999999999"))
    python = pythons["3.8"]
    inventory = write(
        "hosts.ini",
        "\n".join(
            [
                "[gatherers]",
                "honest imds_endpoint={}".format(honest.url),
                "liar imds_endpoint={}".format(liar.url),
                "[carriers]",
                "real facts_file={}".format(write("real.json", json.dumps(real))),
                "edited facts_file={}".format(write("edited.json", json.dumps(edited))),
                "[all:vars]",
                "ansible_connection=local",
                "ansible_python_interpreter={}".format(python),
                "trust=['{}']".format(trust),
            ]
        )
        + "\n",
    )
    playbook = write("verify.yml", PLAY)
    extra = json.dumps({"dump": str(tmp_path / "dump")})
    result = run_ansible("ansible-playbook", "-i", str(inventory), str(playbook), "-e", extra)
    assert result.returncode == 2, result.output  # some hosts failed, as they must

    mine = dumped("honest.json")
    assert mine["document"]["instanceId"] == "i-0123456789abcdef0"
    assert set(mine["verified"]) == {"signature", "rsa2048"}
    assert dumped("real.json")["verified"] == {"rsa2048": "aws:us-west-2:rsa2048"}
    assert not (tmp_path / "dump" / "liar.json").exists()
    assert not (tmp_path / "dump" / "edited.json").exists()
    failures = [line for line in result.output.splitlines() if "verified_identity:" in line]
    assert any(
        "liar" in line
        and "verified_identity: bad rsa2048 signature: it does not verify with the certificate "
        "for eu-central-1"
        in line
        for line in failures
    ), result.output
    assert any(
        "edited" in line and "the facts' document is not the one AWS signed" in line
        for line in failures
    ), result.output
    assert "Traceback" not in result.output


def docs_tasks(first_line: str, trust: Path) -> List[Dict[str, Any]]:
    text = readme_block(DOCS, first_line).replace("'simulator.pem'", "'{}'".format(trust))
    tasks: List[Dict[str, Any]] = yaml.safe_load(text)
    return tasks


def test_the_docs_examples_pass_on_the_simulator_with_its_certificate_only(
    imds_simulator: Simulator,
    run_ansible: Callable[..., Run],
    pythons: Dict[str, Path],
    write: Callable[[str, str], Path],
) -> None:
    assert imds_simulator.signer is not None
    trust = write("simulator.pem", imds_simulator.signer.certificate_pem)
    gather = {"name": "Gather", "imds.ec2.ec2_metadata_facts": None}
    plays = [
        {
            "hosts": "targets",
            "gather_facts": False,
            "tasks": [
                gather,
                *docs_tasks(
                    "- name: Verify a simulated host, trusting the simulator's certificate", trust
                ),
            ],
        }
    ]
    inventory = write("hosts.ini", local_inventory({"sim": pythons["3.8"]}))
    rehearsal = run_ansible(
        "ansible-playbook", "-i", str(inventory), str(write("rehearse.yml", yaml.safe_dump(plays)))
    )
    assert rehearsal.returncode == 0, rehearsal.output
    assert "All assertions passed" in rehearsal.output
    plays[0]["tasks"] = [
        gather,
        *docs_tasks(
            "- name: Refuse to go on with a host that cannot prove which instance it is", trust
        ),
    ]
    production = run_ansible(
        "ansible-playbook", "-i", str(inventory), str(write("site.yml", yaml.safe_dump(plays)))
    )
    assert production.returncode == 2, production.output
    assert "verified_identity: bad rsa2048 signature: it does not verify" in production.output
