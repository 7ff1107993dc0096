"""``salt-call --local`` with the installed extension against the IMDS simulator.

What a user types on a minion: the grain is there by ``pip install`` alone
(no ``_grains/``, no ``saltutil.sync_grains``), targets match, secrets stay
out, and off EC2 the minion is quiet.
"""

from __future__ import annotations

import json
from typing import Callable

import pytest
from salt_grains_support import SECRETS, Minion, loud_lines, salt_call

from ec2_metadata_core.simulator import Fault, Simulator

pytestmark = pytest.mark.slow

ASG = "aws:autoscaling:groupName"


@pytest.fixture
def on_ec2(imds_simulator: Simulator, minion: Callable[..., Minion]) -> Minion:
    return minion({"endpoint": imds_simulator.url})


def test_grains_get_region_and_instance_type(on_ec2: Minion) -> None:
    assert salt_call(on_ec2, "grains.get", "ec2:region").value == "eu-central-1"
    assert salt_call(on_ec2, "grains.get", "ec2:instance_type").value == "m5.large"
    assert loud_lines(on_ec2.log) == []


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("ec2:availability_zone:eu-central-1b", True),
        ("ec2:availability_zone:eu-central-1a", False),
        ("ec2:tags:Role:web", True),
        ("ec2:tags:Role:db", False),
        ("ec2:network_interfaces:*:subnet_id:subnet-0a1b2c3d4e5f60002", True),
        ("ec2:network_interfaces:*:subnet_id:subnet-nope", False),
        # salt-contrib's shape: raw tag keys under ec2_tags.
        ("ec2_tags:Role:web", True),
        ("ec2_tags:Role:db", False),
        # Colon tags, sanitised view: no delimiter trouble.
        ("ec2_tags_safe:aws_autoscaling_groupName:web-asg", True),
        ("ec2_tags_safe:aws_autoscaling_groupName:db-asg", False),
        # ... while the raw key cannot be reached with the default delimiter.
        ("ec2:tags:{}:web-asg".format(ASG), False),
    ],
)
def test_match_grain(on_ec2: Minion, target: str, expected: bool) -> None:
    assert salt_call(on_ec2, "match.grain", target).value is expected


@pytest.mark.parametrize(("value", "expected"), [("web-asg", True), ("db-asg", False)])
def test_colon_tags_match_with_another_delimiter(
    on_ec2: Minion, value: str, expected: bool
) -> None:
    target = "ec2|tags|{}|{}".format(ASG, value)
    assert salt_call(on_ec2, "match.grain", target, "delimiter=|").value is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("G|@ec2|tags|{}|web-asg and G@ec2:region:eu-central-1".format(ASG), True),
        ("G|@ec2|tags|{}|db-asg".format(ASG), False),
    ],
)
def test_colon_tags_in_compound_matchers(on_ec2: Minion, expression: str, expected: bool) -> None:
    """``G|@`` sets the delimiter for one grain term, as top files need."""
    assert salt_call(on_ec2, "match.compound", expression).value is expected


def test_colon_tags_read_with_another_delimiter(on_ec2: Minion) -> None:
    key = "ec2|tags|{}".format(ASG)
    assert salt_call(on_ec2, "grains.get", key, "delimiter=|").value == "web-asg"


def test_grains_items_hold_no_secrets(on_ec2: Minion) -> None:
    result = salt_call(on_ec2, "grains.items")
    assert result.value["ec2"]["iam_role_names"] == ["web-app-role"]
    assert "iam_security_credentials" not in result.value["ec2"]
    assert "user_data" not in result.value["ec2"]
    assert [s for s in SECRETS if s in result.stdout] == []
    assert [s for s in SECRETS if s in on_ec2.log.read_text()] == []


def test_include_secrets_puts_credentials_in_grains(
    imds_simulator: Simulator, minion: Callable[..., Minion]
) -> None:
    """The switch works (so the test above would notice a leak)."""
    target = minion({"endpoint": imds_simulator.url, "include_secrets": True})
    key = salt_call(target, "grains.get", "ec2:iam_security_credentials:AccessKeyId")
    assert key.value == "ASIASIMULATORKEY0001"


def test_endpoint_from_the_aws_environment(
    imds_simulator: Simulator, minion: Callable[..., Minion]
) -> None:
    target = minion(None)  # AWS_EC2_METADATA_SERVICE_ENDPOINT set by the fixture
    assert salt_call(target, "grains.get", "ec2:availability_zone").value == "eu-central-1b"


def _baseline(minion: Callable[..., Minion]) -> float:
    return salt_call(minion({"enabled": False}), "grains.items").seconds


def test_refused_endpoint_no_grain_clean_log(minion: Callable[..., Minion]) -> None:
    base = _baseline(minion)
    target = minion(None)  # the AWS variable: 127.0.0.1:9 (tests/conftest.py), nothing listens
    result = salt_call(target, "grains.items")
    assert "ec2" not in result.value and "ec2_tags" not in result.value
    assert "ec2_tags_safe" not in result.value
    assert loud_lines(target.log) == []
    print("refused IMDS: salt-call grains.items {:+.2f}s vs disabled".format(result.seconds - base))


def test_https_endpoint_on_plain_http_no_grain_no_traceback(
    imds_simulator: Simulator, minion: Callable[..., Minion]
) -> None:
    target = minion({"endpoint": imds_simulator.url.replace("http://", "https://")})
    result = salt_call(target, "grains.items")
    assert "ec2" not in result.value and "ec2_tags" not in result.value
    log_text = target.log.read_text()
    assert "Traceback" not in log_text and "[CRITICAL" not in log_text, log_text
    loud = loud_lines(target.log)
    # The minion config names this endpoint: one warning that names the cause.
    assert len(loud) == 1 and "TLS handshake failed" in loud[0], loud


def test_silent_endpoint_no_grain_clean_log_then_remembered(
    imds_simulator_factory: Callable[..., Simulator],
    minion: Callable[..., Minion],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = imds_simulator_factory(silent=True)
    base = _baseline(minion)
    # Not configured in the minion: the AWS variable stands in for the default address.
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", sim.url)
    target = minion(None)
    first = salt_call(target, "grains.items")
    second = salt_call(target, "grains.items")
    for result in (first, second):
        assert "ec2" not in result.value
    assert sim.stats.token_requests == 1  # the second run trusted the cachedir
    assert loud_lines(target.log) == []
    print(
        "silent IMDS: salt-call grains.items {:+.2f}s first, {:+.2f}s remembered".format(
            first.seconds - base, second.seconds - base
        )
    )


def test_failing_imds_logs_one_warning(
    imds_simulator_factory: Callable[..., Simulator], minion: Callable[..., Minion]
) -> None:
    sim = imds_simulator_factory(faults=[Fault(path="/latest/meta-data/*", status=500)])
    target = minion({"endpoint": sim.url, "attempts": 2, "include_secrets": True})
    result = salt_call(target, "grains.items")
    assert "ec2" not in result.value
    loud = loud_lines(target.log)
    assert len(loud) == 1, loud
    assert "ec2 grain omitted" in loud[0]
    log_text = target.log.read_text()
    assert "Traceback" not in log_text
    assert [s for s in SECRETS if s in log_text] == []
    assert json.dumps(result.value).count("ASIASIMULATORKEY0001") == 0
