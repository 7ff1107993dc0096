"""Settings as one object: built from a face's mapping, named once, never silently dropped."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

from ec2_metadata_core import ConfigError, EC2Metadata
from ec2_metadata_core.client import IMDSClient
from ec2_metadata_core.config import OPTIONS, Settings, resolve, settings_in
from ec2_metadata_core.simulator import Simulator

ROOT = Path(__file__).resolve().parent.parent
NO_FILE = {"AWS_CONFIG_FILE": "/nonexistent"}

# -- the mapping constructor -------------------------------------------------------------


def test_from_mapping_gives_what_resolve_gives() -> None:
    options = {"endpoint": "http://127.0.0.1:9", "timeout": "2.5", "attempts": 4}
    settings = Settings.from_mapping(options, environ=NO_FILE)
    assert settings == resolve(environ=NO_FILE, **options)
    assert settings.endpoint == "http://127.0.0.1:9"
    assert settings.timeout == 2.5
    assert settings.attempts == 4


def test_from_mapping_takes_none_as_unset() -> None:
    options = {name: None for name in OPTIONS}
    assert Settings.from_mapping(options, environ=NO_FILE) == Settings()


def test_from_mapping_names_an_unknown_key_in_one_line() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_mapping({"timeout": 1, "time_out": 2}, environ=NO_FILE)
    message = str(raised.value)
    assert message.startswith("time_out is not a setting (known: endpoint, ")
    assert "\n" not in message


def test_from_mapping_names_a_bad_value() -> None:
    with pytest.raises(ConfigError, match=r"^attempts must be between 1 and 100, not 0$"):
        Settings.from_mapping({"attempts": 0}, environ=NO_FILE)


def test_from_mapping_keeps_the_precedence_mapping_environment_file(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(
        "[default]\nmetadata_service_timeout = 7\nmetadata_service_num_attempts = 5\n"
        "ec2_metadata_v1_disabled = false\n"
    )
    env = {"AWS_CONFIG_FILE": str(path), "AWS_METADATA_SERVICE_TIMEOUT": "3"}
    from_file_and_env = Settings.from_mapping({"timeout": None}, environ=env)
    assert from_file_and_env.timeout == 3.0  # the variable beats the file
    assert from_file_and_env.attempts == 5  # the file beats the default
    assert from_file_and_env.allow_imdsv1 is True  # only an explicit "false" allows v1
    given = Settings.from_mapping({"timeout": 9, "allow_imdsv1": False}, environ=env)
    assert given.timeout == 9.0  # the mapping beats the variable
    assert given.allow_imdsv1 is False  # and the file


def test_settings_in_keeps_only_settings() -> None:
    params = {"endpoint": "http://127.0.0.1:9", "include_secrets": True, "token_ttl": 60}
    assert settings_in(params) == {"endpoint": "http://127.0.0.1:9", "token_ttl": 60}


def test_for_probe_is_one_short_try_of_the_same_endpoint() -> None:
    settings = Settings(endpoint="http://127.0.0.1:9", allow_imdsv1=True)
    probe = settings.for_probe(0.2)
    assert (probe.timeout, probe.attempts) == (0.2, 1)
    assert probe._replace(timeout=settings.timeout, attempts=settings.attempts) == settings


def test_every_library_keyword_is_a_setting_and_back() -> None:
    """The library's keywords are its spelling of OPTIONS: none missing, none extra."""
    code = EC2Metadata.__init__.__code__
    keywords = set(code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount])
    assert keywords - {"client", "pool_manager"} == set(OPTIONS)


# -- settings beside client= ---------------------------------------------------------------


@pytest.mark.parametrize(
    "given, named",
    [({"timeout": 5}, "timeout"), ({"allow_imdsv1": True}, "allow_imdsv1")],
)
def test_settings_beside_client_raise_a_clear_error(
    imds_simulator: Simulator, given: Dict[str, object], named: str
) -> None:
    client = IMDSClient(settings=Settings(endpoint=imds_simulator.url))
    with pytest.raises(ConfigError) as raised:
        EC2Metadata(client=client, **given)  # type: ignore[arg-type]
    message = str(raised.value)
    assert message.startswith("{}= goes to the client, not beside client=".format(named))
    assert "\n" not in message
    client.close()


def test_session_beside_client_raises_a_clear_error(imds_simulator: Simulator) -> None:
    import requests

    client = IMDSClient(settings=Settings(endpoint=imds_simulator.url))
    with requests.Session() as session, pytest.raises(ConfigError, match=r"^session= goes to"):
        EC2Metadata(session, client=client)
    client.close()


def test_client_alone_is_used_with_its_own_settings(imds_simulator: Simulator) -> None:
    client = IMDSClient(settings=Settings(endpoint=imds_simulator.url, timeout=4))
    metadata = EC2Metadata(client=client)
    assert metadata.client is client
    assert metadata.region == "eu-central-1"
    client.close()


def test_keywords_beside_settings_raise_on_the_client_too() -> None:
    with pytest.raises(ConfigError, match=r"^timeout= goes into settings=, not beside it$"):
        IMDSClient(settings=Settings(endpoint="http://127.0.0.1:9"), timeout=3)


def test_client_keywords_go_through_from_mapping() -> None:
    with pytest.raises(ConfigError, match=r"^colour is not a setting"):
        IMDSClient(colour="red")


# -- no option spelled outside config.py, the client and one spec per face -------------------

# Modules that obey the settings: they may name them freely.
CLIENT_SIDE = {
    "ec2_metadata_core/config.py",
    "ec2_metadata_core/client.py",
    "ec2_metadata_core/pacing.py",
    "ec2_metadata_core/tokens.py",
    "ec2_metadata_core/transport.py",
    "ec2_metadata_core/workers.py",
    "ec2_metadata_core/wire.py",
    "ec2_metadata_core/compat.py",
}
# Each face's one option spec where it names settings as strings or keywords:
# (file, the top-level function or assignment holding it). The library's keywords
# (EC2Metadata's signature) and the minion's section (salt_grains.options.Options)
# name them as parameters and fields, which the scan does not count.
SPECS = {
    ("ec2_metadata_core/cli.py", "_connection_options"),  # the CLI's argparse options
    ("ansible_collection/plugins/modules/ec2_metadata_facts.py", "ARGUMENT_SPEC"),
}
# A name that only shares its spelling with a setting: the presence cache file's own
# field for the URL it remembers.
NOT_THE_SETTING = {
    ("salt_grains/presence_cache.py", "endpoint"),
    ("salt_grains/enroll.py", "timeout"),  # the POST to the master's webhook, not IMDS
}
FACE_DIRS = ("ec2_metadata_core", "salt_grains", "ansible_collection/plugins")
FACE_FILES = ("ansible_collection/extensions/eda/plugins/event_source/ec2_metadata_events.py",)


def spellings(tree: ast.AST) -> Iterator[Tuple[int, str]]:
    """Where ``tree`` names a setting: a string ``"timeout"`` or a keyword ``timeout=``.

    Reading a resolved value (``settings.endpoint``) and local names are not counted:
    threading a setting by hand needs its name as a key or a keyword.
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in OPTIONS:
                yield node.lineno, node.value
        elif isinstance(node, ast.keyword) and node.arg in OPTIONS:
            yield node.value.lineno, node.arg


def spec_name(node: ast.stmt) -> str:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    return ""


def stray_spellings(relative: str, source: str) -> List[str]:
    """``file:line: name`` for each setting named in a face module outside its spec."""
    found = []
    for statement in ast.parse(source).body:
        if (relative, spec_name(statement)) in SPECS:
            continue
        for line, name in spellings(statement):
            if (relative, name) not in NOT_THE_SETTING:
                found.append("{}:{}: {}".format(relative, line, name))
    return found


def face_modules() -> List[str]:
    files: Set[str] = set(FACE_FILES)
    for folder in FACE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if "/simulator/" not in relative and relative not in CLIENT_SIDE:
                files.add(relative)
    return sorted(files)


def test_the_check_sees_a_setting_threaded_by_hand() -> None:
    source = (
        "ARGUMENT_SPEC = dict(timeout=dict(type='float'))\n"
        "def gather(params):\n"
        "    return EC2Metadata(allow_imdsv1=params['allow_imdsv1'])\n"
    )
    found = stray_spellings("ansible_collection/plugins/modules/ec2_metadata_facts.py", source)
    assert found == [
        "ansible_collection/plugins/modules/ec2_metadata_facts.py:3: allow_imdsv1",
        "ansible_collection/plugins/modules/ec2_metadata_facts.py:3: allow_imdsv1",
    ]


def test_no_setting_is_named_outside_config_the_client_and_one_spec_per_face() -> None:
    modules = face_modules()
    # The scan covers every face: a folder moved away would make it pass vacuously.
    assert {"ec2_metadata_core/cli.py", "salt_grains/ec2.py"} <= set(modules)
    assert "ansible_collection/plugins/inventory/ec2_metadata.py" in modules
    assert FACE_FILES[0] in modules
    stray = []
    for relative in modules:
        stray += stray_spellings(relative, (ROOT / relative).read_text(encoding="utf-8"))
    assert stray == [], "name these only in config.OPTIONS and the face's spec"


def test_each_spec_still_names_settings() -> None:
    """The spec exemptions point at real specs (a renamed one would exempt nothing)."""
    for relative, name in sorted(SPECS):
        tree = ast.parse((ROOT / relative).read_text(encoding="utf-8"))
        specs = [node for node in tree.body if spec_name(node) == name]
        assert len(specs) == 1, (relative, name)
        assert {setting for line, setting in spellings(specs[0])} & set(OPTIONS), name
