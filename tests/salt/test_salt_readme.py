"""Every command, top file, minion config and state salt_grains/README.md shows, run for real.

The README's blocks are read from the file, so a block added there without a
way to run it here fails ``test_every_block_is_run``. Targeting lines
(``salt -G``/``salt -C``, which need a master) are run as the matcher each
minion runs for them, ``salt-call match.grain``/``match.compound``, on a minion
whose IMDS is the simulator; ``salt-call`` lines run as written.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
import yaml
from readme_support import Block, readme_block, readme_blocks
from salt_grains_support import SALT_CALL, Minion, hostile, injection, loud_lines, salt_call

from ec2_metadata_core.simulator import Simulator
from saltext.imds_ec2.options import SECTION, from_minion_opts

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
README = REPO / "salt_grains" / "README.md"
# The README's throwaway setup (ROOT=$(mktemp -d)) and the simulator port it uses.
README_ROOT = "$ROOT"
README_PORT = "1338"


def blocks() -> List[Block]:
    return readme_blocks(README)


def commands(block: Block) -> List[List[str]]:
    """The block's command lines, split as the shell would, comments dropped."""
    return [shlex.split(line, comments=True) for line in block.text.splitlines() if line.strip()]


def comment(line: str) -> str:
    return line.split("#", 1)[1].strip() if "  #" in line else ""


def is_targeting(block: Block) -> bool:
    return block.language == "sh" and all(
        words[0] in ("salt", "salt-call") and "--local" not in words for words in commands(block)
    )


def is_install(block: Block) -> bool:
    return block.language == "sh" and all("install" in words for words in commands(block))


def is_trying_it(block: Block) -> bool:
    return block.language == "sh" and '"{}'.format(README_ROOT) in block.text


def kinds(block: Block) -> List[str]:
    found = []
    if is_targeting(block):
        found.append("targeting")
    if is_install(block):
        found.append("install")
    if is_trying_it(block):
        found.append("trying it")
    if block.language == "yaml" and block.text.startswith("base:"):
        found.append("top file")
    if block.language == "yaml" and block.text.startswith(SECTION + ":"):
        found.append("minion config")
    if block.language == "yaml" and block.text.startswith("# " + README_ROOT + "/srv/"):
        found.append("state")
    if block.language == "yaml" and block.text.startswith(("# /etc/salt/", "# /srv/")):
        found.append("beacon and reactor")  # test_salt_master.py, test_salt_beacon.py
    if block.language == "" and block.text.startswith("salt/beacon/"):
        found.append("beacon event")  # test_salt_master.py
    return found


def test_every_block_is_run() -> None:
    for block in blocks():
        assert len(kinds(block)) == 1, "no test runs this README block:\n" + block.text


@pytest.fixture
def on_ec2(imds_simulator: Simulator, minion: Callable[..., Minion]) -> Minion:
    return minion({"endpoint": imds_simulator.url})


def run_targeting(minion: Minion, block: Block) -> int:
    """Each line of a targeting block, as the minion runs it; how many ran."""
    ran = 0
    for line, words in zip(block.text.splitlines(), commands(block)):
        if words[0] == "salt":
            options = [word for word in words[1:] if word.startswith("-")]
            target = next(word for word in words[1:] if not word.startswith("-"))
            delimiter = [o.split("=", 1)[1] for o in options if o.startswith("--delimiter")]
            if "-C" in options:
                args = ["match.compound", target]
            else:
                assert "-G" in options, line
                args = ["match.grain", target]
            args += ["delimiter=" + d for d in delimiter]
            assert salt_call(minion, *args).value is True, line
        else:
            value = salt_call(minion, *words[1:]).value
            assert value not in (None, "", {}, False), line
            expected = comment(line)
            if expected and " " not in expected:
                assert value == expected, line
        ran += 1
    return ran


def test_targeting_and_grains_get_lines(on_ec2: Minion) -> None:
    ran = sum(run_targeting(on_ec2, block) for block in filter(is_targeting, blocks()))
    assert ran >= 15
    assert loud_lines(on_ec2.log) == []


def test_install_lines_name_this_package() -> None:
    pyproject = REPO / "packaging" / "saltext" / "pyproject.toml"
    project = re.search(r'(?m)^name = "([^"]+)"', pyproject.read_text())
    assert project is not None
    for block in filter(is_install, blocks()):
        for words in commands(block):
            assert words[-1] == project.group(1), words


def test_top_file_targets_the_instance(
    on_ec2: Minion, imds_simulator: Simulator, tmp_path: Path
) -> None:
    (top,) = [b for b in blocks() if kinds(b) == ["top file"]]
    srv = on_ec2.root / "srv"
    srv.mkdir(parents=True, exist_ok=True)
    (srv / "top.sls").write_text(top.text)
    (srv / "webserver.sls").write_text("webserver-ran:\n  test.succeed_without_changes\n")
    result = salt_call(on_ec2, "state.show_top")
    assert result.value == {"base": ["webserver"]}
    imds_simulator.set("meta-data/tags/instance/Role", "db")
    assert salt_call(on_ec2, "state.show_top").value == {}


def test_minion_config_block_is_accepted_as_written(
    imds_simulator: Simulator, minion: Callable[..., Minion], monkeypatch: pytest.MonkeyPatch
) -> None:
    (config,) = [b for b in blocks() if kinds(b) == ["minion config"]]
    section = yaml.safe_load(config.text)[SECTION]
    from_minion_opts({SECTION: section})  # every option it shows exists and is valid
    # endpoint: null -> the AWS variable, here the simulator.
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds_simulator.url)
    target = minion(section)
    assert salt_call(target, "grains.get", "ec2:region").value == "eu-central-1"


def _wait_for_port(port: int, process: subprocess.Popen[str]) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the simulator did not start on port {}".format(port))


def test_trying_it_off_ec2_as_written(tmp_path: Path) -> None:
    """The simulator CLI, the local-minion CLI, salt-call and the state, in the README's order."""
    from fault_support import free_port

    port = str(free_port())
    root = Path()

    def localize(text: str) -> str:
        return text.replace(README_ROOT, str(root)).replace(README_PORT, port)

    def assign(words: List[str]) -> str:
        """``ROOT=$(mktemp -d)``, run by the shell (TMPDIR: this test's): the path it made."""
        line = " ".join(words)
        assert line == "ROOT=$(mktemp -d)", line
        done = subprocess.run(
            ["sh", "-c", line + ' && printf %s "$ROOT"'],
            capture_output=True,
            text=True,
            env={**os.environ, "TMPDIR": str(tmp_path)},
            check=True,
        )
        return done.stdout

    trying = [words for b in blocks() if kinds(b) == ["trying it"] for words in commands(b)]
    (state,) = [b for b in blocks() if kinds(b) == ["state"]]
    tools: Dict[str, str] = {"python": sys.executable, "salt-call": str(SALT_CALL)}
    outputs: List[str] = []
    background: List[subprocess.Popen[str]] = []
    try:
        for words in trying:
            if words[0].startswith("ROOT="):
                root = Path(assign(words))
                continue
            words = [localize(word) for word in words]
            if words[-1] == "&":
                process = subprocess.Popen(
                    [tools[words[0]], *words[1:-1]], stdout=subprocess.PIPE, text=True
                )
                background.append(process)
                _wait_for_port(int(port), process)
                continue
            if "state.apply" in words:
                # ROOT/srv was made by the local-minion command, as the README says.
                (root / "srv" / (words[-1] + ".sls")).write_text(state.text)
            done = subprocess.run(
                [tools[words[0]], *words[1:], "--out=json"]
                if words[0] == "salt-call"
                else [tools[words[0]], *words[1:]],
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            assert done.returncode == 0, (words, done.stdout, done.stderr)
            assert "Traceback" not in done.stderr
            outputs.append(done.stdout)
    finally:
        for process in background:
            process.terminate()
            process.wait(timeout=30)
    assert outputs[0].strip() == str(root / "conf")
    assert '"eu-central-1b"' in outputs[1]
    assert '"web-asg"' in outputs[2]
    assert (root / "region.txt").read_text().strip() == "eu-central-1 web"


def test_local_setup_cli_helps_and_refuses_bad_options_in_one_line(tmp_path: Path) -> None:
    module = [sys.executable, "-m", "saltext.imds_ec2.local"]
    helped = subprocess.run([*module, "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0
    for option in ("ROOT", "--endpoint", "--id", "--set"):
        assert option in helped.stdout, option
    refused = subprocess.run(
        [*module, str(tmp_path / "x"), "--set", "timeout=soon"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "timeout" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "x").exists()


# -- untrusted values stay data ----------------------------------------------------

MAIN_README = REPO / "README.md"
TRUST_DOC = REPO / "docs" / "trust.md"
# What may be put into YAML unfiltered: the minion's own config, not IMDS.
TRUSTED = ("opts[",)
QUOTED = re.compile(r"\|\s*(yaml_dquote|json)\s*$")


def salt_yaml_blocks() -> List[Block]:
    """YAML blocks of salt_grains/README.md and of the Salt sections of docs/trust.md, README.md."""
    main = MAIN_README.read_text(encoding="utf-8")
    salt_sections = "".join(
        part for part in re.split(r"(?m)^(?=## )", main) if part.startswith("## Salt")
    )
    trust = TRUST_DOC.read_text(encoding="utf-8")
    salt_trust = trust.split("\n## Salt\n", 1)[1].split("\n## ", 1)[0]
    found = [b for b in blocks() if b.language == "yaml"]
    found += [b for b in readme_blocks(TRUST_DOC) if b.language == "yaml" and b.text in salt_trust]
    found += [
        b for b in readme_blocks(MAIN_README) if b.language == "yaml" and b.text in salt_sections
    ]
    return found


def test_every_jinja_value_in_a_salt_yaml_example_is_quoted() -> None:
    """Each ``{{ ... }}`` in a Salt YAML block ends in ``| yaml_dquote`` (or ``| json``)."""
    expressions = [e for b in salt_yaml_blocks() for e in re.findall(r"\{\{(.*?)\}\}", b.text)]
    assert len(expressions) >= 6
    for expression in expressions:
        if not expression.strip().startswith(TRUSTED):
            assert QUOTED.search(expression), "unquoted: {{{{{}}}}}".format(expression)


def render(text: str, tmp_path: Path, **context: Any) -> Any:
    """``text`` through Salt's own jinja|yaml renderer, as the master renders a reactor file."""
    import salt.config
    import salt.loader
    import salt.template

    opts = salt.config.minion_config(None)
    opts.update(file_client="local", cachedir=str(tmp_path / "cache"))
    template = tmp_path / "template.sls"
    template.write_text(text, encoding="utf-8")
    renderers = salt.loader.render(opts, {})
    return salt.template.compile_template(
        str(template), renderers, "jinja|yaml", "", "", context=context
    )


def test_the_reactor_and_drain_examples_keep_hostile_values_literal(tmp_path: Path) -> None:
    """Whatever answers at the minion's endpoint writes the notice; it stays one value."""
    marker = tmp_path / "pwned"
    action, time = hostile(marker), "2026-11-28T08:22:00Z\nextra: {{ 7 * 7 }}"
    event = {"id": "web-1", "notice": {"action": action, "time": time}, "time": time}
    reactor = render(
        readme_block(README, "# /srv/reactor/spot-drain.sls"),
        tmp_path,
        data=event,
        tag="salt/beacon/web-1/ec2_metadata/spot/interruption",
    )
    pillar = {"spot_action": action, "spot_time": time}
    assert json.loads(json.dumps(reactor)) == {
        "drain the minion": {
            "local.state.apply": [
                {"tgt": "web-1"},
                {"args": [{"mods": "drain"}, {"pillar": pillar}]},
            ]
        }
    }
    drain = render(readme_block(README, "# /srv/salt/drain.sls"), tmp_path, pillar=pillar)
    assert json.loads(json.dumps(drain)) == {
        "leave the load balancer": {
            "file.managed": [
                {"name": "/run/ec2-spot-drain"},
                {"contents": "{} at {}".format(action, time)},
            ]
        }
    }
    assert not marker.exists()


UNQUOTED_STATE = """\
{{ opts['root_dir'] }}/region.txt:
  file.managed:
    - contents: {{ grains['ec2']['region'] }} {{ salt['grains.get']('ec2:tags:Role', 'none') }}
"""


def test_the_injection_runs_in_the_unquoted_state_this_readme_showed(
    on_ec2: Minion, imds_simulator: Simulator, tmp_path: Path
) -> None:
    """Issue 17 finding 3, reproduced: what test_salt_versions.py's hostile tag carries is live."""
    marker = tmp_path / "pwned"
    imds_simulator.set("meta-data/tags/instance/Role", injection(marker))
    (on_ec2.root / "srv" / "region.sls").write_text(UNQUOTED_STATE)
    shown = salt_call(on_ec2, "state.show_sls", "region").value
    assert "cmd" in shown["pwned"], shown
    salt_call(on_ec2, "state.apply", "region")
    assert marker.exists()


def test_yaml_dquote_round_trips_what_json_folds(tmp_path: Path) -> None:
    """docs/trust.md: for a string, | yaml_dquote keeps U+0085 and U+2028; | json does not."""
    value = "a \u0085 b \u2028 c\nd \x07 \U0001f600"
    text = "quoted:\n  - dquote: {{ value | yaml_dquote }}\n  - json: {{ value | json }}\n"
    (dquote, as_json) = render(text, tmp_path, value=value)["quoted"]
    assert dquote == {"dquote": value}
    assert as_json != {"json": value} and as_json["json"].startswith("a")


def test_every_block_of_the_salt_trust_doc_is_run() -> None:
    """docs/trust.md's Salt section: its one state runs in test_salt_versions.py."""
    text = TRUST_DOC.read_text(encoding="utf-8")
    (section,) = [p for p in re.split(r"(?m)^(?=## )", text) if p.startswith("## Salt\n")]
    shown = [b.text.splitlines()[0] for b in readme_blocks(TRUST_DOC) if b.text in section]
    assert shown == ["# $ROOT/srv/role.sls"]


def test_the_project_readme_targeting_lines(on_ec2: Minion) -> None:
    """The front door's Salt example (README.md at the top of the repository)."""
    (block,) = [b for b in filter(is_targeting, readme_blocks(REPO / "README.md"))]
    assert run_targeting(on_ec2, block) == len(block.text.splitlines())
    assert loud_lines(on_ec2.log) == []
