"""Install what `make bench` measures, before the measurements go offline.

Runs outside the network namespace (it downloads); run.py then runs inside it.
Idempotent: each step is skipped when its result is already there for the
same pins. Steps:

1. ``pip download --no-deps --require-hashes -r requirements/bench.txt``
   into benchmarks/.venv-cache/wheels;
2. benchmarks/.venv-peers: a venv of the same Python as .venv, with
   ec2-metadata and urllib3 from those wheels (no index);
3. ansible_collections/amazon/aws extracted from the ansible wheel;
4. our collection built by ansible_collection/build.py (into the cache, not
   build/ or dist/) and installed from its tarball with ansible-galaxy.

A step that cannot be done (our collection not buildable yet) is recorded in
benchmarks/.venv-cache/setup.json and reported by run.py, not fatal.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

import layout

# Downloaded, but not installed in the peers' venv.
EXTRACT_ONLY = ("ansible",)
PIP = [str(layout.PYTHON), "-m", "pip", "--disable-pip-version-check"]


def pins() -> Dict[str, str]:
    """name -> version from requirements/bench.txt."""
    found = {}
    for line in layout.REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        spec = line.split("#", 1)[0].split("--hash", 1)[0].strip()
        if "==" in spec:
            name, version = spec.split("==", 1)
            found[name.strip().lower()] = version.strip()
    return found


def wheel_for(name: str, version: str) -> Optional[Path]:
    stem = "{}-{}-".format(name.replace("-", "_"), version)
    matches = sorted(layout.WHEELS.glob(stem + "*.whl"))
    return matches[0] if matches else None


def download(wanted: Dict[str, str]) -> None:
    if all(wheel_for(n, v) for n, v in wanted.items()):
        return
    layout.WHEELS.mkdir(parents=True, exist_ok=True)
    print("bench setup: downloading the peers ({})".format(", ".join(sorted(wanted))))
    subprocess.run(
        [
            *PIP,
            "download",
            "-q",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--require-hashes",
            "-r",
            str(layout.REQUIREMENTS),
            "-d",
            str(layout.WHEELS),
        ],
        check=True,
    )


def requirements_digest() -> str:
    return hashlib.sha256(layout.REQUIREMENTS.read_bytes()).hexdigest()[:16]


def peers_venv(wanted: Dict[str, str]) -> None:
    stamp = layout.PEERS_VENV / ".installed"
    digest = requirements_digest()
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == digest:
        return
    print("bench setup: creating {}".format(layout.PEERS_VENV))
    if layout.PEERS_VENV.exists():
        shutil.rmtree(layout.PEERS_VENV)
    # The same base interpreter as .venv, so both sides start equally fast.
    subprocess.run([str(layout.PYTHON), "-m", "venv", str(layout.PEERS_VENV)], check=True)
    wheels = [str(wheel_for(n, v)) for n, v in sorted(wanted.items()) if n not in EXTRACT_ONLY]
    subprocess.run(
        [
            str(layout.PEERS_PYTHON),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-index",
            "--no-deps",
            *wheels,
        ],
        check=True,
    )
    stamp.write_text(digest, encoding="utf-8")


def amazon_aws(version: str) -> str:
    """Extract amazon.aws from the ansible wheel; its version."""
    stamp = layout.AMAZON_AWS_ROOT / ".from-ansible"
    if not (stamp.is_file() and stamp.read_text(encoding="utf-8") == version):
        wheel = wheel_for("ansible", version)
        assert wheel is not None
        print("bench setup: extracting amazon.aws from {}".format(wheel.name))
        if layout.AMAZON_AWS_ROOT.exists():
            shutil.rmtree(layout.AMAZON_AWS_ROOT)
        prefix = "ansible_collections/amazon/aws/"
        with zipfile.ZipFile(wheel) as archive:
            members = [m for m in archive.namelist() if m.startswith(prefix)]
            archive.extractall(layout.AMAZON_AWS_ROOT, members)
        stamp.write_text(version, encoding="utf-8")
    manifest = json.loads((layout.AMAZON_AWS / "MANIFEST.json").read_text(encoding="utf-8"))
    return str(manifest["collection_info"]["version"])


def our_collection() -> Dict[str, str]:
    """Build and install imds.ec2 from this tree; what happened."""
    build = layout.ROOT / "ansible_collection" / "build.py"
    if not build.is_file():
        return {"error": "ansible_collection/build.py not there yet"}
    for old in (layout.OURS_DIST, layout.OURS_COLLECTIONS, layout.OURS_STAGE.parents[2]):
        if old.exists():
            shutil.rmtree(old)
    done = subprocess.run(
        [
            str(layout.PYTHON),
            str(build),
            "--stage",
            str(layout.OURS_STAGE),
            "--dist",
            str(layout.OURS_DIST),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    tarballs = sorted(layout.OURS_DIST.glob("imds-ec2-*.tar.gz"))
    if done.returncode != 0 or not tarballs:
        return {"error": "collection build failed: " + (done.stderr or done.stdout).strip()[-300:]}
    installed = subprocess.run(
        [
            str(layout.BIN / "ansible-galaxy"),
            "collection",
            "install",
            "--offline",
            "--force",
            "-p",
            str(layout.OURS_COLLECTIONS),
            str(tarballs[-1]),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if installed.returncode != 0:
        return {"error": "collection install failed: " + installed.stderr.strip()[-300:]}
    return {"tarball": tarballs[-1].name}


def main() -> int:
    wanted = pins()
    missing: List[str] = [n for n in ("ec2-metadata", "urllib3", "ansible") if n not in wanted]
    if missing:
        print("bench setup: {} lacks pins for {}".format(layout.REQUIREMENTS, missing))
        return 2
    try:
        download(wanted)
        peers_venv(wanted)
        amazon_version = amazon_aws(wanted["ansible"])
    except (subprocess.CalledProcessError, OSError, zipfile.BadZipFile) as exc:
        print("bench setup: failed: {}".format(exc), file=sys.stderr)
        return 1
    collection = our_collection()
    record = {"pins": wanted, "amazon_aws_version": amazon_version, "ours_collection": collection}
    layout.CACHE.mkdir(parents=True, exist_ok=True)
    layout.SETUP_RECORD.write_text(json.dumps(record, indent=2), encoding="utf-8")
    if "error" in collection:
        print("bench setup: our collection: {}".format(collection["error"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
