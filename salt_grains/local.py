"""A self-contained ``salt-call --local`` setup, for trying the grains off EC2.

With the simulator (``python -m ec2_metadata_core simulate``) this lets you
run ``salt-call --local -c <confdir> grains.get ec2:region`` or a state on
any machine: everything Salt reads or writes stays under one directory.

From a shell: ``python -m saltext.imds_ec2.local ROOT --endpoint URL``.
Salt loads modules and reads its config from under ROOT with the caller's
rights, so ROOT must be a directory nobody else could have prepared.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from ec2_metadata_core import config
from ec2_metadata_core.errors import ConfigError

from .options import SECTION, connection_settings, from_minion_opts


class UnsafeRootError(Exception):
    """ROOT is not a directory only this user could have written: it is refused.

    Salt run as this user (often root) loads modules from ``extension_modules``
    and reads ``conf/minion`` under ROOT, so a ROOT someone else can write is
    code they can run.
    """


# Written into ROOT when this module creates it: "a ROOT this command made".
MARKER = ".saltext-imds-ec2-local"
_SUBDIRS = ("conf", "cache", "pki", "sock", "extmods", "srv", "pillar")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW


def _check_ancestors(top: Path, uid: int) -> None:
    """The directories above ROOT: nobody but root and us may swap ROOT in them.

    ``top`` is the deepest existing directory above ROOT. A symlink on the way
    must be root's or ours; each real directory from / down must be root's or
    ours and writable by no one else, unless sticky (``/tmp``: others cannot
    rename or remove our entries there).
    """
    for path in (top, *top.parents):
        link = os.lstat(path)
        if stat.S_ISLNK(link.st_mode) and link.st_uid not in (0, uid):
            raise UnsafeRootError("{} is a symlink of uid {}".format(path, link.st_uid))
    real = Path(os.path.realpath(top))
    for path in (real, *real.parents):
        info = os.stat(path)
        if info.st_uid not in (0, uid):
            raise UnsafeRootError(
                "{} is owned by uid {}, not by you or root".format(path, info.st_uid)
            )
        if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
            raise UnsafeRootError("{} is writable by others (and not sticky)".format(path))


def _check_own_dir(info: os.stat_result, where: str, uid: int) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeRootError("{} is a symlink".format(where))
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeRootError("{} is not a directory".format(where))
    if info.st_uid != uid:
        raise UnsafeRootError("{} is owned by uid {}, not by you".format(where, info.st_uid))
    if info.st_mode & 0o022:
        raise UnsafeRootError("{} is writable by group or others".format(where))


def _lstat_at(name: str, dir_fd: int) -> Optional[os.stat_result]:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _write_at(dir_fd: int, name: str, text: str) -> None:
    """Replace ``name`` in the open directory: a new 0600 file renamed over it.

    O_EXCL|O_NOFOLLOW on the new file and rename(2) over the old name: no
    symlink at either name is ever followed.
    """
    temporary = ".{}.{}.tmp".format(name, os.getpid())
    fd = os.open(temporary, _NEW_FILE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=dir_fd)
        raise


def _open_root(root: Path) -> int:
    """Create ROOT or accept it; return an open descriptor of it.

    Accepted: a path that does not exist yet (made 0700, with missing parents),
    a directory this module made before (it holds MARKER), or an empty
    directory of this user that group and others cannot write (what
    ``mktemp -d`` makes). Refused: anything else, a symlink above all.
    """
    uid = os.geteuid()
    missing: List[Path] = []
    existing = root
    while not os.path.lexists(existing):
        missing.append(existing)
        existing = existing.parent
    _check_ancestors(existing if missing else root.parent, uid)
    created = bool(missing)
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            raise UnsafeRootError("{} appeared while being created".format(path)) from None
    _check_own_dir(os.lstat(root), str(root), uid)  # names a symlink, before open refuses it
    fd = os.open(root, _DIR_FLAGS)
    try:
        _check_own_dir(os.fstat(fd), str(root), uid)
        if not created and MARKER not in os.listdir(fd) and os.listdir(fd):
            raise UnsafeRootError(
                "{} exists and was not made by this command: give a new or empty "
                "directory (ROOT=$(mktemp -d))".format(root)
            )
        marker = _lstat_at(MARKER, fd)
        if marker is not None and not stat.S_ISREG(marker.st_mode):
            raise UnsafeRootError("{}/{} is not a regular file".format(root, MARKER))
        if marker is None:
            _write_at(fd, MARKER, "made by python -m saltext.imds_ec2.local\n")
        return fd
    except BaseException:
        os.close(fd)
        raise


def write_local_minion(
    root: Path, minion_id: str = "imds-local", ec2_metadata: Optional[Dict[str, Any]] = None
) -> Path:
    """Write ``root/conf/minion`` for ``salt-call --local``; return the config dir.

    ``ec2_metadata`` is the grains' section of the minion config (endpoint,
    include_secrets, ...). FQDN grains are off: they would resolve host names.
    ROOT must be new, made by this function before, or an empty directory of
    this user; every directory under it is this user's and 0700, and no
    symlink in it is followed (UnsafeRootError otherwise).
    """
    root = Path(os.path.abspath(root))
    uid = os.geteuid()
    root_fd = _open_root(root)
    try:
        for name in _SUBDIRS:
            found = _lstat_at(name, root_fd)
            if found is None:
                os.mkdir(name, 0o700, dir_fd=root_fd)
            else:
                _check_own_dir(found, str(root / name), uid)
        minion: Dict[str, Any] = {
            "id": minion_id,
            "file_client": "local",
            "root_dir": str(root),
            "cachedir": str(root / "cache"),
            "pki_dir": str(root / "pki"),
            "sock_dir": str(root / "sock"),
            "extension_modules": str(root / "extmods"),
            "file_roots": {"base": [str(root / "srv")]},
            "pillar_roots": {"base": [str(root / "pillar")]},
            "log_file": str(root / "minion.log"),
            "enable_fqdns_grains": False,
            "grains_cache": False,
        }
        if ec2_metadata is not None:
            minion["ec2_metadata"] = ec2_metadata
        conf_fd = os.open("conf", _DIR_FLAGS, dir_fd=root_fd)
        try:
            _check_own_dir(os.fstat(conf_fd), str(root / "conf"), uid)
            existing = _lstat_at("minion", conf_fd)
            if existing is not None and not stat.S_ISREG(existing.st_mode):
                raise UnsafeRootError("{} is not a regular file".format(root / "conf" / "minion"))
            # JSON is YAML: Salt reads it as is.
            _write_at(conf_fd, "minion", json.dumps(minion, indent=2) + "\n")
        finally:
            os.close(conf_fd)
    finally:
        os.close(root_fd)
    return root / "conf"


def _section(args: argparse.Namespace) -> Optional[Dict[str, Any]]:
    """The ``ec2_metadata:`` section from the command line, validated as the grain will.

    Options named after a setting (``--endpoint``) go in first, ``--set`` after.
    """
    given = config.settings_in(vars(args))
    section = {name: value for name, value in given.items() if value is not None}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError("--set takes NAME=VALUE, not {!r}".format(item))
        section[name] = yaml.safe_load(value) if value else None
    connection_settings(from_minion_opts({SECTION: section}))
    return section or None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m saltext.imds_ec2.local",
        description="Write a salt-call --local setup under ROOT (config, cache, logs, "
        "file_roots all inside it) that reads EC2 metadata from ENDPOINT, e.g. the simulator "
        "started with 'python -m ec2_metadata_core simulate --port 1338'.",
        epilog="Then: salt-call --local -c ROOT/conf grains.get ec2:region",
    )
    parser.add_argument(
        "root",
        type=Path,
        metavar="ROOT",
        help="directory to write into: a new path, an empty directory of yours that group and "
        "others cannot write (ROOT=$(mktemp -d)), or one this command made before",
    )
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="IMDS base URL, e.g. http://127.0.0.1:1338 (default: the AWS SDK settings of "
        "the salt-call process, else http://169.254.169.254)",
    )
    parser.add_argument("--id", default="imds-local", help="minion ID (default: %(default)s)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="another ec2_metadata option, e.g. include_secrets=true or probe_timeout=1 "
        "(repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        section = _section(args)
        confdir = write_local_minion(args.root, args.id, section)
    except (ConfigError, UnsafeRootError, OSError, yaml.YAMLError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print("{}: error: {}".format(parser.prog, message), file=sys.stderr)
        return 2
    print(confdir)
    print("run: salt-call --local -c {} grains.get ec2:region".format(confdir), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
