"""The grain module in this process: discovery, config, off-EC2, failures, long-lived minions.

These call the code the way the minion does (through Salt's loader where it
matters) against the IMDS simulator; the salt-call and master tests run the
real processes.
"""

from __future__ import annotations

import json
import logging
import time
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest
from salt_grains_support import SECRETS, Minion

from ec2_metadata_core import EC2Metadata
from ec2_metadata_core.errors import ConfigError
from ec2_metadata_core.flat import flatten
from ec2_metadata_core.simulator import Fault, Simulator
from ec2_metadata_core.snapshot import snapshot
from saltext.imds_ec2 import ec2 as grains_impl
from saltext.imds_ec2 import presence_cache
from saltext.imds_ec2.options import DEFAULT_PROBE_TIMEOUT, Options, from_minion_opts

GRAIN_FUNCTION = "imds_ec2.ec2"
# conftest.py points the AWS endpoint variable here: nothing listens.
REFUSED = "http://127.0.0.1:9"
ENDPOINT_VARIABLE = "AWS_EC2_METADATA_SERVICE_ENDPOINT"


def opts_for(tmp_path: Path, **section: Any) -> Dict[str, Any]:
    return {"cachedir": str(tmp_path / "cache"), "ec2_metadata": section}


def salt_opts(minion: Minion) -> Dict[str, Any]:
    import salt.config

    return dict(salt.config.minion_config(str(minion.confdir / "minion")))


def refresh(opts: Dict[str, Any]) -> Dict[str, Any]:
    """One grains refresh of our module as the minion does it: fresh loader, then clean-up."""
    import salt.loader

    funcs = salt.loader.grain_funcs(opts)
    try:
        result: Dict[str, Any] = funcs[GRAIN_FUNCTION]()
    finally:
        funcs.clean_modules()
    return result


# -- discovery -------------------------------------------------------------------


def test_the_package_registers_a_salt_loader_entry_point() -> None:
    found = [
        ep for ep in entry_points().select(group="salt.loader") if ep.value == "saltext.imds_ec2"
    ]
    assert [ep.name for ep in found] == ["saltext.imds_ec2"]


def test_salt_finds_the_grains_directory_through_the_entry_point(
    minion: Callable[..., Minion],
) -> None:
    import salt.loader

    opts = salt_opts(minion({"enabled": False}))
    dirs = salt.loader._module_dirs(opts, "grains", "grain", ext_type_dirs="grains_dirs")
    import saltext.imds_ec2

    grains_dir = Path(saltext.imds_ec2.__file__).parent / "grains"
    ours = [d for d in dirs if Path(d) == grains_dir]
    assert len(ours) == 1
    assert GRAIN_FUNCTION in salt.loader.grain_funcs(opts)


# -- what the grains hold ---------------------------------------------------------


def test_ec2_grain_is_the_snapshot_and_tags_view_keeps_every_tag(
    imds_simulator: Simulator, tmp_path: Path
) -> None:
    got = grains_impl.grains(opts_for(tmp_path, endpoint=imds_simulator.url))
    expected = snapshot(EC2Metadata(endpoint=imds_simulator.url))
    assert got["ec2"] == expected
    assert got["ec2"]["availability_zone"] == "eu-central-1b"
    tags = expected["tags"]
    # ec2_tags: the keys as they are, as salt-contrib's ec2_tags grain has them.
    assert got["ec2_tags"] == tags
    view = got["ec2_tags_safe"]
    assert view["aws_autoscaling_groupName"] == "web-asg"
    assert view["cost_center"] == "cc-4711"
    assert sorted(view.values()) == sorted(tags.values())  # env-tier and env_tier both kept
    assert all(":" not in key and "." not in key and "-" not in key for key in view)
    # The same names as the flat export (dump --format flat), minus its prefix.
    flat_tags = {k: v for k, v in flatten(expected).items() if k.startswith("tags_")}
    assert {"tags_" + k: v for k, v in view.items()} == flat_tags


def test_tag_grains_are_absent_when_tags_are_not_in_metadata_and_it_says_how_once(
    imds_simulator_factory: Callable[..., Simulator],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sim = imds_simulator_factory(tags_enabled=False)
    opts = opts_for(tmp_path, endpoint=sim.url)
    for _ in range(3):  # refreshes of one minion process
        got = grains_impl.grains(opts)
        assert got["ec2"]["tags"] is None
        assert "ec2_tags" not in got and "ec2_tags_safe" not in got
    hints = [r for r in caplog.records if "--instance-metadata-tags enabled" in r.getMessage()]
    assert len(hints) == 1, [r.getMessage() for r in hints]
    assert hints[0].levelno == logging.INFO
    assert hints[0].getMessage().startswith("ec2_tags grain omitted: instance tags are not")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_secrets_stay_out_unless_configured(imds_simulator: Simulator, tmp_path: Path) -> None:
    plain = json.dumps(grains_impl.grains(opts_for(tmp_path, endpoint=imds_simulator.url)))
    assert not [s for s in SECRETS if s in plain]
    grains_impl.forget_clients()
    loaded = grains_impl.grains(
        opts_for(tmp_path, endpoint=imds_simulator.url, include_secrets=True)
    )
    assert loaded["ec2"]["iam_security_credentials"]["AccessKeyId"] == "ASIASIMULATORKEY0001"
    assert "user_data" not in loaded["ec2"]
    with_user_data = grains_impl.grains(
        opts_for(tmp_path, endpoint=imds_simulator.url, include_user_data=True)
    )
    assert "simulator-user-data-secret" in json.dumps(with_user_data["ec2"]["user_data"])
    assert "iam_security_credentials" not in with_user_data["ec2"]


# -- configuration -----------------------------------------------------------------


def test_endpoint_comes_from_the_aws_environment_when_not_configured(
    imds_simulator: Simulator, tmp_path: Path
) -> None:
    got = grains_impl.grains({"cachedir": str(tmp_path)})  # fixture set the AWS variable
    assert got["ec2"]["region"] == "eu-central-1"
    assert imds_simulator.stats.requests > 0


def test_aws_metadata_disabled_means_no_grain_and_no_request(
    imds_simulator: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert grains_impl.grains(opts_for(tmp_path)) == {}
    assert imds_simulator.stats.requests == 0


def test_enabled_false_means_no_grain_and_no_request(
    imds_simulator: Simulator, tmp_path: Path
) -> None:
    assert grains_impl.grains(opts_for(tmp_path, enabled=False)) == {}
    assert imds_simulator.stats.requests == 0


def test_options_defaults_and_parsing() -> None:
    assert from_minion_opts({}) == Options()
    assert Options().probe_timeout == DEFAULT_PROBE_TIMEOUT
    assert not Options().include_secrets and not Options().include_user_data
    parsed = from_minion_opts(
        {
            "ec2_metadata": {
                "enabled": "yes",
                "timeout": 2,
                "attempts": 5,
                "probe_timeout": "0.5",
                "negative_cache_seconds": 0,
                "include_secrets": None,
            }
        }
    )
    assert parsed == Options(timeout=2, attempts=5, probe_timeout=0.5, negative_cache_seconds=0)


@pytest.mark.parametrize(
    ("section", "named"),
    [
        ({"include_secret": True}, "ec2_metadata.include_secret"),
        ({"enabled": "maybe"}, "ec2_metadata.enabled"),
        ({"probe_timeout": 0}, "ec2_metadata.probe_timeout"),
        ({"negative_cache_seconds": "soon"}, "ec2_metadata.negative_cache_seconds"),
        ("on", "ec2_metadata must be a mapping"),
    ],
)
def test_bad_options_are_named(section: Any, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        from_minion_opts({"ec2_metadata": section})


def test_bad_config_omits_the_grain_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert grains_impl.grains(opts_for(tmp_path, endpoint="ftp://nowhere")) == {}
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1
    assert "invalid setting" in loud[0].getMessage() and loud[0].exc_info is None


# -- off EC2 -------------------------------------------------------------------------


def quiet(caplog: pytest.LogCaptureFixture) -> bool:
    return not [r for r in caplog.records if r.levelno >= logging.INFO]


# Off EC2 the minion config names no endpoint: the AWS variable (conftest.py,
# or monkeypatch) stands in for the default address, which tests must not use.


def test_refused_endpoint_gives_no_grain_quietly_and_is_remembered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    opts = opts_for(tmp_path)
    assert grains_impl.grains(opts) == {}
    assert quiet(caplog)
    assert any("not on EC2" in r.getMessage() for r in caplog.records)
    record = json.loads(Path(presence_cache.path_in(opts["cachedir"]) or "").read_text())
    assert record["endpoint"] == REFUSED


def test_silent_endpoint_is_probed_once_then_remembered(
    imds_simulator_factory: Callable[..., Simulator],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    sim = imds_simulator_factory(silent=True)
    monkeypatch.setenv(ENDPOINT_VARIABLE, sim.url)
    opts = opts_for(tmp_path)
    started = time.monotonic()
    assert grains_impl.grains(opts) == {}
    first = time.monotonic() - started
    assert sim.stats.token_requests == 1  # one attempt: the probe, not the full gather
    grains_impl.forget_clients()  # as a new salt-call process would
    started = time.monotonic()
    assert grains_impl.grains(opts) == {}
    second = time.monotonic() - started
    assert sim.stats.token_requests == 1  # answered from the cachedir
    assert quiet(caplog)
    print("silent IMDS: first load +{:.3f}s, remembered +{:.3f}s".format(first, second))


def test_remembered_absence_expires_and_is_per_endpoint(
    imds_simulator_factory: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = imds_simulator_factory(silent=True)
    opts = opts_for(tmp_path, endpoint=sim.url, negative_cache_seconds=60)
    path = presence_cache.path_in(opts["cachedir"])
    assert grains_impl.grains(opts) == {}
    assert sim.stats.token_requests == 1
    # An hour-old answer is stale: probe again.
    Path(path or "").write_text(json.dumps({"endpoint": sim.url, "checked": time.time() - 3600}))
    grains_impl.forget_clients()
    assert grains_impl.grains(opts) == {}
    assert sim.stats.token_requests == 2
    # The answer is about one endpoint: another one is probed.
    other = imds_simulator_factory()
    got = grains_impl.grains(opts_for(tmp_path, endpoint=other.url))
    assert got["ec2"]["instance_id"] == "i-0123456789abcdef0"
    # ... and once an IMDS answers, the remembered absence is dropped.
    assert not Path(path or "").exists()


def test_negative_cache_seconds_zero_probes_every_time(
    imds_simulator_factory: Callable[..., Simulator], tmp_path: Path
) -> None:
    sim = imds_simulator_factory(silent=True)
    opts = opts_for(tmp_path, endpoint=sim.url, negative_cache_seconds=0, probe_timeout=0.05)
    for _ in range(2):
        grains_impl.forget_clients()
        assert grains_impl.grains(opts) == {}
    assert sim.stats.token_requests == 2
    assert not Path(presence_cache.path_in(opts["cachedir"]) or "").exists()


def test_an_unwritable_cachedir_only_costs_the_memory(
    imds_simulator_factory: Callable[..., Simulator],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    sim = imds_simulator_factory(silent=True)
    monkeypatch.setenv(ENDPOINT_VARIABLE, sim.url)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    opts = {"cachedir": str(blocker), "ec2_metadata": {}}
    assert grains_impl.grains(opts) == {}
    assert quiet(caplog)
    assert list(tmp_path.iterdir()) == [blocker]


def test_imds_turned_off_on_the_instance_is_absent_and_said_once(
    imds_simulator_factory: Callable[..., Simulator],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sim = imds_simulator_factory(faults=[Fault(path="/latest/api/token", status=403)])
    opts = opts_for(tmp_path, endpoint=sim.url)
    assert grains_impl.grains(opts) == {}
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1 and "403" in loud[0] and "turned off" in loud[0]
    caplog.clear()
    assert grains_impl.grains(opts) == {}  # remembered: no second warning, no request
    assert quiet(caplog)
    assert sim.stats.token_requests == 1


def loud_messages(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_configured_endpoint_that_does_not_answer_warns_and_is_probed_again_soon(
    imds_simulator_factory: Callable[..., Simulator],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An endpoint the minion config names: a missed probe is said, and retried in a minute."""
    caplog.set_level(logging.DEBUG)
    sim = imds_simulator_factory(silent=True)
    opts = opts_for(tmp_path, endpoint=sim.url)
    assert grains_impl.grains(opts) == {}
    loud = loud_messages(caplog)
    assert len(loud) == 1, loud
    assert loud[0].startswith("ec2 grain omitted: no IMDS answered at " + sim.url)
    assert "ec2_metadata.endpoint is set" in loud[0] and "probing again in 60s" in loud[0]
    # Remembered for a minute, not the hour of negative_cache_seconds.
    caplog.clear()
    grains_impl.forget_clients()
    assert grains_impl.grains(opts) == {}
    assert sim.stats.token_requests == 1 and loud_messages(caplog) == []
    path = Path(presence_cache.path_in(opts["cachedir"]) or "")
    record = json.loads(path.read_text())
    assert record["retry_after"] == 60
    record["checked"] -= 61
    path.write_text(json.dumps(record))
    grains_impl.forget_clients()
    sim.silent = False
    assert grains_impl.grains(opts)["ec2"]["region"] == "eu-central-1"
    assert sim.stats.token_requests == 2


def test_an_imds_that_answered_before_and_then_does_not_warns(
    imds_simulator_factory: Callable[..., Simulator],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A throttled or slow IMDS at probe time on EC2: said once, retried in a minute."""
    caplog.set_level(logging.DEBUG)
    sim = imds_simulator_factory()
    monkeypatch.setenv(ENDPOINT_VARIABLE, sim.url)
    opts = opts_for(tmp_path)
    assert grains_impl.grains(opts)["ec2"]["region"] == "eu-central-1"
    grains_impl.forget_clients()  # the next salt-call, or a minion restart
    sim.silent = True
    assert grains_impl.grains(opts) == {}
    loud = loud_messages(caplog)
    assert len(loud) == 1, loud
    assert "it answered this minion before" in loud[0] and "probing again in 60s" in loud[0]
    record = json.loads(Path(presence_cache.path_in(opts["cachedir"]) or "").read_text())
    assert record["retry_after"] == 60


# -- IMDS present but failing ----------------------------------------------------------


def test_failing_gather_logs_one_warning_without_secrets(
    imds_simulator_factory: Callable[..., Simulator],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sim = imds_simulator_factory(faults=[Fault(path="/latest/meta-data/*", status=500)])
    opts = opts_for(tmp_path, endpoint=sim.url, include_secrets=True, attempts=2)
    assert grains_impl.grains(opts) == {}
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1
    message = loud[0].getMessage()
    assert loud[0].exc_info is None and "\n" not in message
    assert "ec2 grain omitted" in message and "500" in message
    assert not [s for s in SECRETS if s in caplog.text]
    # IMDS is there: that is not remembered as "not on EC2".
    assert not Path(presence_cache.path_in(opts["cachedir"]) or "").exists()


# -- a long-lived minion -------------------------------------------------------------


def test_one_client_per_process_renews_its_token_and_never_caches_values(
    imds_simulator_factory: Callable[..., Simulator],
    minion: Callable[..., Minion],
) -> None:
    sim = imds_simulator_factory()
    opts = salt_opts(minion({"endpoint": sim.url}))

    first = refresh(opts)
    assert first["ec2"]["spot_instance_action"] is None
    assert sim.stats.token_requests == 1  # the probe's token serves the gather

    notice = {"action": "stop", "time": "2026-11-26T12:00:00Z"}
    sim.set("meta-data/spot/instance-action", {"$json": notice, "$compact": True})
    sim.set("meta-data/tags/instance/Role", "db")
    second = refresh(opts)
    assert sim.stats.token_requests == 1  # token kept across refreshes: no probe, no PUT
    assert second["ec2"]["spot_instance_action"] == {
        "action": "stop",
        "time": "2026-11-26T12:00:00Z",
    }
    assert second["ec2"]["tags"]["Role"] == second["ec2_tags_safe"]["Role"] == "db"

    sim.expire_tokens()  # the service forgot the token: 401, renew, retry
    assert refresh(opts)["ec2"]["instance_id"] == "i-0123456789abcdef0"
    assert sim.stats.token_requests == 2
    assert sim.stats.by_status[401] >= 1

    sim.token_ttl_cap = 2  # from now on tokens live 2 s (the client renews at 1.8 s)
    sim.expire_tokens()
    refresh(opts)
    assert sim.stats.token_requests == 3
    time.sleep(2.0)  # that token's lifetime runs out: renewed before use, no 401
    before_401 = sim.stats.by_status[401]
    assert refresh(opts)["ec2"]["region"] == "eu-central-1"
    assert sim.stats.token_requests == 4
    assert sim.stats.by_status[401] == before_401


def test_grains_on_a_changed_config_use_a_new_client(
    imds_simulator_factory: Callable[..., Simulator], tmp_path: Path
) -> None:
    one, two = imds_simulator_factory(), imds_simulator_factory()
    two.set("meta-data/placement/availability-zone", "eu-central-1a")
    got_one: Optional[Dict[str, Any]] = grains_impl.grains(opts_for(tmp_path, endpoint=one.url))
    got_two = grains_impl.grains(opts_for(tmp_path, endpoint=two.url))
    assert got_one and got_one["ec2"]["availability_zone"] == "eu-central-1b"
    assert got_two["ec2"]["availability_zone"] == "eu-central-1a"


def test_an_error_out_of_the_client_is_one_warning_never_a_traceback(
    imds_simulator: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An https:// endpoint on a plain-HTTP server: the TLS handshake fails (an IMDSError)."""
    caplog.set_level(logging.DEBUG)
    opts = opts_for(tmp_path, endpoint=imds_simulator.url.replace("http://", "https://"))
    assert grains_impl.grains(opts) == {}
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1, [r.getMessage() for r in loud]
    assert loud[0].exc_info is None and "\n" not in loud[0].getMessage()
    assert loud[0].getMessage().startswith("ec2 grain omitted: ")


def test_a_404_for_a_value_every_instance_has_omits_the_grain_naming_the_path(
    imds_simulator_factory: Callable[..., Simulator],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The grain held instance_id None (issue 18).
    sim = imds_simulator_factory()
    sim.delete("meta-data/instance-id")
    assert grains_impl.grains(opts_for(tmp_path, endpoint=sim.url)) == {}
    (loud,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "/latest/meta-data/instance-id" in loud.getMessage()
