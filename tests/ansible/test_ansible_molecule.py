"""The collection's molecule scenario: converge and verify the instance_summary role."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Dict

import pytest
from imds_ansible_env import VENV_BIN

from ec2_metadata_core.simulator import Simulator

pytestmark = pytest.mark.slow


def test_molecule_scenario(
    imds_simulator: Simulator, staged_copy: Path, ansible_env: Dict[str, str], tmp_path: Path
) -> None:
    summary = tmp_path / "instance-summary.json"
    env = dict(ansible_env, INSTANCE_SUMMARY_PATH=str(summary), MOLECULE_NO_LOG="false")
    result = subprocess.run(
        [str(VENV_BIN / "molecule"), "test"],
        cwd=str(staged_copy),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-20000:]
    assert "idempotence" in result.stdout
    assert json.loads(summary.read_text()) == {
        "autoscaling_group": "web-asg",
        "availability_zone": "eu-central-1b",
        "instance_id": "i-0123456789abcdef0",
        "instance_type": "m5.large",
        "region": "eu-central-1",
        "role": "web",
        "subnets": ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"],
    }
