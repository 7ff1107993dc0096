"""``python -m saltext.imds_ec2.local ROOT``: only a ROOT nobody else could have written.

Salt, run as this user (root, on most minions), reads ``ROOT/conf/minion`` and
loads modules from ``ROOT/extmods``: a ROOT someone else prepared is code
they run. Each case is the CLI a user runs; a refusal is one line, exit 2,
and nothing written.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from saltext.imds_ec2.local import MARKER, UnsafeRootError, write_local_minion

OTHER_UID = 65534  # nobody
SUBDIRS = ["cache", "conf", "extmods", "pillar", "pki", "sock", "srv"]


def local(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "saltext.imds_ec2.local", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def tree(top: Path) -> Dict[str, Tuple[int, bytes]]:
    """Every path under ``top``: its lstat mode and, for a regular file, its bytes."""
    found = {}
    for path in [top, *top.rglob("*")]:
        info = os.lstat(path)
        body = path.read_bytes() if stat.S_ISREG(info.st_mode) else b""
        found[str(path)] = (info.st_mode, body)
    return found


def assert_refused(root: Path, why: str) -> None:
    """One line, exit 2, and nothing written or changed anywhere near ROOT."""
    top = root.parent.parent
    before = tree(top)
    done = local(str(root), "--endpoint", "http://127.0.0.1:9")
    assert done.returncode == 2, done
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and why in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert tree(top) == before


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def give_away(*paths: Path) -> None:
    """chown to another user: root can, unless in a user namespace that maps only itself."""
    try:
        for path in paths:
            os.chown(path, OTHER_UID, OTHER_UID)
    except PermissionError:
        pytest.skip("needs root to give a directory to another user")
    except OSError:  # EINVAL: ``unshare -r`` maps one uid; make test isolates with ``unshare -n``
        pytest.skip("in a user namespace with one uid: no other user to give a directory to")


def test_a_new_root_is_made_private_with_every_directory_salt_uses(tmp_path: Path) -> None:
    root = tmp_path / "a" / "imds-salt"  # missing parents are made too
    done = local(str(root), "--endpoint", "http://127.0.0.1:1338")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(root / "conf")
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == SUBDIRS
    # srv/ is there for the README's state, before the user writes into it.
    for path in [root, tmp_path / "a", *(root / name for name in SUBDIRS)]:
        assert mode(path) == 0o700, path
    assert mode(root / "conf" / "minion") == 0o600
    # Run again on the ROOT it made: accepted, the config rewritten.
    again = local(str(root), "--endpoint", "http://127.0.0.1:1339")
    assert again.returncode == 0, again.stderr
    assert "1339" in (root / "conf" / "minion").read_text()
    assert [p.name for p in (root / "conf").iterdir()] == ["minion"]  # no temporary left


def test_an_empty_private_directory_of_yours_is_taken(tmp_path: Path) -> None:
    """What ``ROOT=$(mktemp -d)`` makes, as the README does."""
    made = subprocess.run(
        ["mktemp", "-d", "-p", str(tmp_path)], capture_output=True, text=True, check=True
    )
    root = Path(made.stdout.strip())
    assert local(str(root)).returncode == 0
    assert (root / MARKER).is_file() and (root / "srv").is_dir()


def test_a_directory_another_user_owns_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "theirs"
    root.mkdir(mode=0o700)
    give_away(root)
    assert_refused(root, "owned by uid {}".format(OTHER_UID))
    assert list(root.iterdir()) == []


def test_a_directory_another_user_made_with_our_marker_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "theirs"
    root.mkdir(mode=0o700)
    (root / MARKER).write_text("forged\n")
    give_away(root)
    assert_refused(root, "owned by uid {}".format(OTHER_UID))


@pytest.mark.parametrize("bits", [0o770, 0o707, 0o777], ids=["group", "others", "both"])
def test_a_group_or_world_writable_root_is_refused(tmp_path: Path, bits: int) -> None:
    root = tmp_path / "open"
    root.mkdir()
    root.chmod(bits)
    assert_refused(root, "writable by group or others")


def test_a_root_under_a_directory_others_may_write_is_refused(tmp_path: Path) -> None:
    """Whoever may write the parent can swap ROOT for a directory of theirs later."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # no sticky bit, unlike /tmp
    assert_refused(shared / "imds-salt", "writable by others (and not sticky)")
    assert not (shared / "imds-salt").exists()


def test_a_root_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(target)
    assert_refused(tmp_path / "link", "is a symlink")
    assert list(target.iterdir()) == []


def test_a_symlink_at_conf_minion_is_never_followed(tmp_path: Path) -> None:
    """The finding: a link at conf/minion made the command overwrite root's file."""
    root = tmp_path / "imds-salt"
    write_local_minion(root)
    precious = tmp_path / "precious"
    precious.write_text("root's own file\n")
    (root / "conf" / "minion").unlink()
    (root / "conf" / "minion").symlink_to(precious)
    assert_refused(root, "conf/minion is not a regular file")
    assert precious.read_text() == "root's own file\n"


@pytest.mark.parametrize("name", ["extmods", "conf", "srv"])
def test_a_symlinked_directory_inside_root_is_refused(tmp_path: Path, name: str) -> None:
    root = tmp_path / "imds-salt"
    write_local_minion(root)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    target = root / name
    for child in sorted(target.rglob("*"), reverse=True):
        child.unlink()
    target.rmdir()
    target.symlink_to(elsewhere)
    assert_refused(root, "{} is a symlink".format(name))
    assert list(elsewhere.iterdir()) == []


def planted(root: Path) -> Path:
    module = root / "extmods" / "grains" / "planted.py"
    module.parent.mkdir(parents=True)
    module.write_text("def planted():\n    open('/tmp/pwned', 'w').close()\n    return {}\n")
    return module


def test_a_directory_with_a_planted_module_is_refused(tmp_path: Path) -> None:
    """The finding: a grain module planted under extension_modules ran as root."""
    root = tmp_path / "prepared"
    root.mkdir(mode=0o700)
    planted(root)
    assert_refused(root, "exists and was not made by this command")


def test_a_directory_another_user_prepared_with_a_module_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "prepared"
    root.mkdir(mode=0o755)
    planted(root)
    give_away(root, *root.rglob("*"))
    assert_refused(root, "owned by uid {}".format(OTHER_UID))


def test_a_subdirectory_another_user_owns_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "imds-salt"
    write_local_minion(root)
    give_away(root / "extmods")
    assert_refused(root, "extmods is owned by uid {}".format(OTHER_UID))


def test_the_python_api_raises_the_same_refusal(tmp_path: Path) -> None:
    root = tmp_path / "open"
    root.mkdir()
    root.chmod(0o777)
    with pytest.raises(UnsafeRootError, match="writable by group or others"):
        write_local_minion(root)
    written: List[Path] = list(root.iterdir())
    assert written == []
