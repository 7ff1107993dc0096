"""Settings: the AWS SDK variables and ~/.aws/config, arguments first, bad values named."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Dict

import pytest

from ec2_metadata_core import ConfigError, EC2Metadata, IMDSError, MetadataDisabledError
from ec2_metadata_core.config import resolve
from ec2_metadata_core.simulator import Simulator

ENDPOINT_VAR = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
MODE_VAR = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"
DISABLED_VAR = "AWS_EC2_METADATA_DISABLED"
TIMEOUT_VAR = "AWS_METADATA_SERVICE_TIMEOUT"
ATTEMPTS_VAR = "AWS_METADATA_SERVICE_NUM_ATTEMPTS"
NO_FILE = {"AWS_CONFIG_FILE": os.devnull}


def write_config(tmp_path: Path, text: str) -> Dict[str, str]:
    path = tmp_path / "config"
    path.write_text(text)
    return {"AWS_CONFIG_FILE": str(path)}


def test_defaults_are_the_ipv4_endpoint_one_second_and_three_attempts() -> None:
    settings = resolve(environ={"AWS_CONFIG_FILE": "/nonexistent"})
    assert settings.endpoint == "http://169.254.169.254"
    assert settings.timeout == 1.0
    assert settings.attempts == 3
    assert settings.disabled is False
    assert settings.allow_imdsv1 is False


def test_endpoint_variable_sets_the_endpoint() -> None:
    settings = resolve(environ={ENDPOINT_VAR: "http://127.0.0.1:8111/"})
    assert settings.endpoint == "http://127.0.0.1:8111"


@pytest.mark.parametrize("mode", ["IPv6", "ipv6", " IPV6 "])
def test_ipv6_mode_resolves_to_the_ipv6_endpoint(mode: str) -> None:
    # Only the resolved endpoint is checked: nothing connects to it.
    assert resolve(environ={MODE_VAR: mode}).endpoint == "http://[fd00:ec2::254]"


def test_ipv4_mode_resolves_to_the_ipv4_endpoint() -> None:
    assert resolve(environ={MODE_VAR: "IPv4"}).endpoint == "http://169.254.169.254"


def test_endpoint_variable_beats_endpoint_mode_variable() -> None:
    env = {ENDPOINT_VAR: "http://127.0.0.1:8111", MODE_VAR: "IPv6"}
    assert resolve(environ=env).endpoint == "http://127.0.0.1:8111"


def test_model_reads_the_endpoint_mode_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENDPOINT_VAR)
    monkeypatch.setenv(MODE_VAR, "IPv6")
    metadata = EC2Metadata()
    assert metadata.client.settings.endpoint == "http://[fd00:ec2::254]"
    assert metadata.service_url == "http://[fd00:ec2::254]/latest/"


def test_endpoint_mode_argument_beats_endpoint_variable() -> None:
    # conftest points AWS_EC2_METADATA_SERVICE_ENDPOINT at a dead loopback port.
    metadata = EC2Metadata(endpoint_mode="IPv6")
    assert metadata.client.settings.endpoint == "http://[fd00:ec2::254]"


def test_endpoint_argument_beats_everything(tmp_path: Path) -> None:
    env = write_config(tmp_path, "[default]\nec2_metadata_service_endpoint = http://127.0.0.3\n")
    env.update({ENDPOINT_VAR: "http://127.0.0.2", MODE_VAR: "IPv6"})
    settings = resolve(endpoint="http://127.0.0.1:9999", environ=env)
    assert settings.endpoint == "http://127.0.0.1:9999"


def test_endpoint_and_endpoint_mode_both_given_is_an_error() -> None:
    # `--ipv6 --endpoint URL` used the URL without a word.
    with pytest.raises(ConfigError, match="endpoint and endpoint_mode"):
        resolve(endpoint="http://127.0.0.1:9999", endpoint_mode="IPv6", environ=NO_FILE)


@pytest.mark.parametrize(
    ("env", "config", "named"),
    [
        ({MODE_VAR: "IPv7", ENDPOINT_VAR: "http://127.0.0.1:1"}, "", MODE_VAR),
        (
            {ENDPOINT_VAR: "http://127.0.0.1:1"},
            "[default]\nec2_metadata_service_endpoint_mode = banana\n",
            "ec2_metadata_service_endpoint_mode (profile default of ",
        ),
    ],
)
def test_a_bad_endpoint_mode_is_an_error_even_beside_an_endpoint(
    tmp_path: Path, env: Dict[str, str], config: str, named: str
) -> None:
    env = {**write_config(tmp_path, config), **env}
    with pytest.raises(ConfigError, match=re.escape(named)):
        resolve(environ=env)


def test_timeout_and_attempts_variables() -> None:
    settings = resolve(environ={TIMEOUT_VAR: "2.5", ATTEMPTS_VAR: "5"})
    assert settings.timeout == 2.5
    assert settings.attempts == 5


def test_arguments_beat_variables() -> None:
    env = {TIMEOUT_VAR: "2.5", ATTEMPTS_VAR: "5", DISABLED_VAR: "true"}
    settings = resolve(timeout=0.5, attempts=1, disabled=False, environ=env)
    assert (settings.timeout, settings.attempts, settings.disabled) == (0.5, 1, False)


def test_default_profile_of_the_shared_config_file(tmp_path: Path) -> None:
    env = write_config(
        tmp_path,
        "[default]\n"
        "ec2_metadata_service_endpoint = http://127.0.0.1:7000\n"
        "metadata_service_timeout = 4\n"
        "metadata_service_num_attempts = 6\n",
    )
    settings = resolve(environ=env)
    assert settings.endpoint == "http://127.0.0.1:7000"
    assert settings.timeout == 4.0
    assert settings.attempts == 6


def test_named_profile_from_aws_profile(tmp_path: Path) -> None:
    env = write_config(
        tmp_path,
        "[default]\nmetadata_service_timeout = 4\n"
        "[profile ci]\nmetadata_service_timeout = 7\n"
        "ec2_metadata_service_endpoint_mode = IPv6\n",
    )
    env["AWS_PROFILE"] = "ci"
    settings = resolve(environ=env)
    assert settings.timeout == 7.0
    assert settings.endpoint == "http://[fd00:ec2::254]"


def test_variables_beat_the_shared_config_file(tmp_path: Path) -> None:
    env = write_config(tmp_path, "[default]\nmetadata_service_timeout = 4\n")
    env[TIMEOUT_VAR] = "3"
    assert resolve(environ=env).timeout == 3.0


def test_model_reads_the_shared_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config"
    path.write_text("[profile box]\nmetadata_service_num_attempts = 9\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
    monkeypatch.setenv("AWS_PROFILE", "box")
    assert EC2Metadata().client.settings.attempts == 9
    assert EC2Metadata(attempts=2).client.settings.attempts == 2


def test_a_malformed_shared_config_file_is_an_error_naming_it(tmp_path: Path) -> None:
    # One line without "=" used to drop the whole file, endpoint and all.
    env = write_config(
        tmp_path,
        "[default]\nec2_metadata_service_endpoint = http://127.0.0.1:9\nnot a setting\n",
    )
    with pytest.raises(ConfigError) as caught:
        resolve(environ=env)
    message = str(caught.value)
    assert env["AWS_CONFIG_FILE"] in message and "not a setting" in message
    assert "\n" not in message


def test_an_unreadable_shared_config_file_is_skipped(tmp_path: Path) -> None:
    env = write_config(tmp_path, "[default]\nmetadata_service_timeout = 7\n")
    Path(env["AWS_CONFIG_FILE"]).chmod(0)
    if os.access(env["AWS_CONFIG_FILE"], os.R_OK):
        pytest.skip("running as a user that reads any file")
    assert resolve(environ=env).timeout == 1.0


def test_profile_default_section_is_the_default_profile(tmp_path: Path) -> None:
    env = write_config(tmp_path, "[profile default]\nmetadata_service_timeout = 7\n")
    assert resolve(environ=env).timeout == 7.0


def test_an_unknown_aws_profile_is_an_error(tmp_path: Path) -> None:
    env = write_config(tmp_path, "[profile ci]\nmetadata_service_timeout = 7\n")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "credentials")
    env["AWS_PROFILE"] = "nosuch"
    with pytest.raises(ConfigError, match="AWS_PROFILE names the profile 'nosuch'"):
        resolve(environ=env)
    (tmp_path / "credentials").write_text("[nosuch]\naws_access_key_id = x\n")
    assert resolve(environ=env).timeout == 1.0  # a profile of the credentials file is one


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({TIMEOUT_VAR: "soon"}, TIMEOUT_VAR),
        ({TIMEOUT_VAR: "0"}, TIMEOUT_VAR),
        ({TIMEOUT_VAR: "nan"}, TIMEOUT_VAR),
        ({ATTEMPTS_VAR: "0"}, ATTEMPTS_VAR),
        ({ATTEMPTS_VAR: "2.5"}, ATTEMPTS_VAR),
        ({DISABLED_VAR: "maybe"}, DISABLED_VAR),
        ({MODE_VAR: "IPv5"}, MODE_VAR),
        ({ENDPOINT_VAR: "169.254.169.254"}, ENDPOINT_VAR),
        ({ENDPOINT_VAR: "ftp://127.0.0.1"}, ENDPOINT_VAR),
        ({ENDPOINT_VAR: "http://"}, ENDPOINT_VAR),
        ({ENDPOINT_VAR: "http://:80"}, ENDPOINT_VAR),
        ({ENDPOINT_VAR: "http://127.0.0.1:http"}, ENDPOINT_VAR),
        ({ENDPOINT_VAR: "http://127.0.0.1:70000"}, ENDPOINT_VAR),
        ({ENDPOINT_VAR: "http://[::1"}, ENDPOINT_VAR),
    ],
)
def test_bad_variable_raises_config_error_naming_it(env: Dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(environ=env)
    message = str(caught.value)
    assert named in message
    assert "\n" not in message


def test_bad_shared_config_value_is_named(tmp_path: Path) -> None:
    env = write_config(tmp_path, "[default]\nmetadata_service_num_attempts = lots\n")
    with pytest.raises(ConfigError) as caught:
        resolve(environ=env)
    assert "metadata_service_num_attempts (profile default of {})".format(
        env["AWS_CONFIG_FILE"]
    ) in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"timeout": -1}, "timeout"),
        ({"attempts": 0}, "attempts"),
        ({"endpoint": "localhost"}, "endpoint"),
        ({"endpoint_mode": "both"}, "endpoint_mode"),
        ({"token_ttl": 21601}, "token_ttl"),
        ({"max_concurrency": 0}, "max_concurrency"),
    ],
)
def test_bad_argument_raises_config_error_on_first_use(
    kwargs: Dict[str, object], named: str
) -> None:
    metadata = EC2Metadata(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=named) as caught:
        metadata.instance_id  # noqa: B018
    assert isinstance(caught.value, IMDSError)
    assert isinstance(caught.value, ValueError)


def test_disabled_variable_stops_every_call(
    monkeypatch: pytest.MonkeyPatch, imds_simulator: Simulator
) -> None:
    monkeypatch.setenv(DISABLED_VAR, "true")
    with pytest.raises(MetadataDisabledError) as caught:
        EC2Metadata().instance_id  # noqa: B018
    assert "AWS_EC2_METADATA_DISABLED" in str(caught.value)
    assert imds_simulator.stats.requests == 0


def test_disabled_argument_beats_the_variable(
    monkeypatch: pytest.MonkeyPatch, imds_simulator: Simulator
) -> None:
    monkeypatch.setenv(DISABLED_VAR, "true")
    assert EC2Metadata(disabled=False).instance_id == "i-0123456789abcdef0"


def test_settings_are_read_on_first_use_and_again_after_clear_all(
    monkeypatch: pytest.MonkeyPatch, imds_simulator_factory: Callable[..., Simulator]
) -> None:
    first, second = imds_simulator_factory(), imds_simulator_factory()
    metadata = EC2Metadata()  # created before the environment names an endpoint
    monkeypatch.setenv(ENDPOINT_VAR, first.url)
    assert metadata.instance_id == "i-0123456789abcdef0"
    monkeypatch.setenv(ENDPOINT_VAR, second.url)
    assert metadata.instance_type == "m5.large"  # same client until cleared
    metadata.clear_all()
    assert metadata.instance_id == "i-0123456789abcdef0"
    assert (first.stats.requests, second.stats.requests) == (3, 2)
