"""Verified identity: AWS's own signed documents verify, the simulator's verify with
its certificate, and every tampering is refused with one line.

The real documents are public material (tests/data/aws-identity/README.md says
where each comes from); the simulator's are read over real HTTP from a
simulator on 127.0.0.1, as a user's code would read them on EC2.
"""

from __future__ import annotations

import base64
import datetime
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import pytest
from test_cli import assert_one_line_error
from test_cli import run as cli

from ec2_metadata_core import identity
from ec2_metadata_core.errors import IdentityVerificationError, IMDSError
from ec2_metadata_core.identity import verify_identity, verify_mapping
from ec2_metadata_core.simulator import Simulator
from ec2_metadata_core.simulator.signing import IdentitySigner

DATA = Path(__file__).resolve().parent / "data" / "aws-identity"
IDENTITY = "dynamic/instance-identity/"


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def served(sim: Simulator) -> Dict[str, bytes]:
    """The document and both signatures, as the client reads them from the simulator."""
    from ec2_metadata_core.client import IMDSClient
    from ec2_metadata_core.config import Settings

    client = IMDSClient(settings=Settings(endpoint=sim.url))
    try:
        bodies = client.get_many(IDENTITY + name for name in ("document", "signature", "rsa2048"))
    finally:
        client.close()
    out = {path.rsplit("/", 1)[1]: body for path, body in bodies.items()}
    assert all(out.values()), out
    return out  # type: ignore[return-value]


def refused(reason: str, **kwargs: Any) -> str:
    with pytest.raises(IdentityVerificationError) as caught:
        verify_identity(**kwargs)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(reason), message
    return message


def flip(text: bytes, index: int) -> bytes:
    """Change one base64 character so the text stays valid base64."""
    chars = bytearray(text)
    chars[index] = ord("B") if chars[index] != ord("B") else ord("C")
    return bytes(chars)


@pytest.fixture(scope="module")
def signed_sim() -> Any:
    with Simulator() as sim:
        yield sim


@pytest.fixture(scope="module")
def proof(signed_sim: Simulator) -> Dict[str, bytes]:
    return served(signed_sim)


@pytest.fixture(scope="module")
def trust(signed_sim: Simulator) -> str:
    assert signed_sim.signer is not None
    return signed_sim.signer.certificate_pem


# -- real documents AWS signed ------------------------------------------------------


@pytest.mark.parametrize("name", ["rspamd-iid0", "rspamd-iid1"])
def test_real_aws_signature_verifies_with_the_bundled_certificate(name: str) -> None:
    verified = verify_identity(read(name + ".json"), signature=read(name + ".signature"))
    assert verified.verified == {"signature": "aws:us-east-1:rsa"}
    assert verified.region == "us-east-1"
    assert verified.account_id == "975050371289"
    assert verified.instance_id.startswith("i-0")


@pytest.mark.parametrize(
    "region, instance", [("us-west-2", "i-078517ca8a70a1dde"), ("us-west-1", "i-01b940c45fd11fe74")]
)
def test_real_aws_rsa2048_verifies_and_carries_its_document(region: str, instance: str) -> None:
    verified = verify_identity(rsa2048=read("teleport-{}.rsa2048".format(region)))
    assert verified.verified == {"rsa2048": "aws:{}:rsa2048".format(region)}
    assert verified.instance_id == instance
    assert verified.region == region
    # The same document given beside it must be byte-identical to what was signed.
    again = verify_identity(
        document=verified.raw, rsa2048=read("teleport-{}.rsa2048".format(region))
    )
    assert again.document == verified.document


def test_an_expired_aws_certificate_still_verifies_with_its_key() -> None:
    """As in Vault and SPIRE: AWS keeps signing with keys whose certificates lapsed."""
    from cryptography import x509

    pem = read("aws-rsa-2014-2024.pem")
    cert = x509.load_pem_x509_certificate(pem)
    assert cert.not_valid_after_utc < datetime.datetime.now(datetime.timezone.utc)
    verified = verify_identity(
        read("rspamd-iid0.json"), signature=read("rspamd-iid0.signature"), trusted=[pem], aws=False
    )
    assert verified.verified["signature"].startswith("trusted:")


def test_the_wrong_regions_certificate_refuses_a_real_document(monkeypatch: Any) -> None:
    bundle = dict(identity.bundled_regions())
    bundle["us-west-2"] = bundle["us-west-1"]
    monkeypatch.setattr(identity, "_BUNDLE", bundle)
    refused(
        "bad rsa2048 signature: it does not verify with the certificate for us-west-2",
        rsa2048=read("teleport-us-west-2.rsa2048"),
    )
    bundle["us-east-1"] = identity.bundled_regions()["af-south-1"]
    refused(
        "bad signature: it does not verify",
        document=read("rspamd-iid0.json"),
        signature=read("rspamd-iid0.signature"),
    )


def test_the_bundle_has_both_rsa_certificates_for_every_region() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

    regions = identity.bundled_regions()
    for partition_region in ("us-east-1", "eu-central-1", "cn-north-1", "us-gov-west-1"):
        assert partition_region in regions
    assert len(regions) >= 39
    for region, entry in regions.items():
        for kind in ("rsa", "rsa2048"):
            key = x509.load_pem_x509_certificate(entry[kind].encode()).public_key()
            assert isinstance(key, rsa.RSAPublicKey), (region, kind)
        assert key.key_size == 2048, region


# -- the simulator signs ------------------------------------------------------------


def test_simulator_documents_verify_with_its_certificate(
    proof: Dict[str, bytes], trust: str
) -> None:
    verified = verify_identity(proof["document"], proof["signature"], proof["rsa2048"], [trust])
    assert set(verified.verified) == {"signature", "rsa2048"}
    assert all(v.startswith("trusted:") for v in verified.verified.values())
    assert verified.instance_id == "i-0123456789abcdef0"
    assert verified.raw == proof["document"]


def test_simulator_documents_do_not_verify_with_aws_certificates(proof: Dict[str, bytes]) -> None:
    refused("bad signature", document=proof["document"], signature=proof["signature"])
    refused("bad rsa2048 signature", rsa2048=proof["rsa2048"])


def test_a_document_changed_live_is_signed_again(trust: str) -> None:
    with Simulator() as sim:
        before = served(sim)
        changed = {"accountId": "210987654321", "instanceId": "i-0fedcba9876543210"}
        changed.update(region="us-east-2", pendingTime="2026-12-01T00:00:00Z")
        sim.set(IDENTITY + "document", {"$json": changed})
        after = served(sim)
        assert after["signature"] != before["signature"]
        verified = verify_identity(after["document"], after["signature"], after["rsa2048"], [trust])
        assert verified.instance_id == "i-0fedcba9876543210"
        # A signature set by hand is served as set: a test can serve a bad one.
        sim.set(IDENTITY + "signature", before["signature"].decode())
        assert served(sim)["signature"] == before["signature"]


def test_a_simulator_can_sign_with_its_own_key_or_not_at_all(trust: str) -> None:
    other = IdentitySigner.generate()
    with Simulator(signer=other) as sim:
        mine = served(sim)
    verify_identity(mine["document"], mine["signature"], trusted=[other.certificate_pem])
    refused(
        "bad signature", document=mine["document"], signature=mine["signature"], trusted=[trust]
    )
    with Simulator(signer=None) as plain:
        assert plain.signer is None
        placeholder = served(plain)
    refused(
        "bad signature",
        document=placeholder["document"],
        signature=placeholder["signature"],
        trusted=[trust],
    )


# -- tampering ------------------------------------------------------------------------


def test_one_byte_of_the_document_changed_is_refused(proof: Dict[str, bytes], trust: str) -> None:
    document = proof["document"].replace(b"i-0123456789abcdef0", b"i-0123456789abcdef1")
    assert document != proof["document"]
    refused("bad signature", document=document, signature=proof["signature"], trusted=[trust])
    refused(
        "bad rsa2048 signature: it signs another document",
        document=document,
        rsa2048=proof["rsa2048"],
        trusted=[trust],
    )


def test_one_character_of_a_signature_changed_is_refused(
    proof: Dict[str, bytes], trust: str
) -> None:
    refused(
        "bad signature",
        document=proof["document"],
        signature=flip(proof["signature"], 10),
        trusted=[trust],
    )
    # In the RSA signature at the end of the SignedData, and in its signed attributes.
    blob = proof["rsa2048"]
    refused("bad rsa2048 signature", rsa2048=flip(blob, len(blob) - 20), trusted=[trust])
    der = bytearray(base64.b64decode(blob))
    at = der.find(bytes.fromhex("2a864886f70d010905"))  # signingTime, a signed attribute
    assert at > 0
    der[at + 15] ^= 0x01
    refused("bad rsa2048 signature", rsa2048=base64.b64encode(bytes(der)), trusted=[trust])


def test_a_signature_of_another_document_is_refused(proof: Dict[str, bytes], trust: str) -> None:
    other = IdentitySigner.generate()
    doc = {"region": "eu-central-1", "instanceId": "i-0aaaaaaaaaaaaaaaa"}
    with Simulator(signer=None) as sim:
        sim.signer = IdentitySigner(other.key, other.certificate)
        sim.set(IDENTITY + "document", {"$json": doc})
        elsewhere = served(sim)
    refused(
        "bad signature",
        document=proof["document"],
        signature=elsewhere["signature"],
        trusted=[trust, other.certificate_pem],
    )
    refused(
        "bad rsa2048 signature: it signs another document",
        document=proof["document"],
        rsa2048=elsewhere["rsa2048"],
        trusted=[trust, other.certificate_pem],
    )


def test_one_good_and_one_bad_signature_is_refused(proof: Dict[str, bytes], trust: str) -> None:
    refused(
        "bad signature",
        document=proof["document"],
        signature=flip(proof["signature"], 3),
        rsa2048=proof["rsa2048"],
        trusted=[trust],
    )


@pytest.mark.parametrize(
    "document, signature, reason",
    [
        (b"{}", b"not base64 at all!", "malformed signature: not base64"),
        (b'{"region": "eu-central-1"}', b"QUJD=", "malformed signature: not base64"),
        (b"not json", b"QUJD", "malformed document: not JSON"),
        (b"[1, 2]", b"QUJD", "malformed document: not a JSON object"),
        (b'{"instanceId": "i-1"}', b"QUJD", "malformed document: no region"),
        (b"\xff\xfe", b"QUJD", "malformed document: not JSON"),
        (b"[" * 100000, b"QUJD", "malformed document: larger than"),
        (b'{"region": "xx-nowhere-1"}', b"QUJD", "unknown region 'xx-nowhere-1'"),
    ],
)
def test_malformed_input_is_refused_with_one_line(
    document: bytes, signature: bytes, reason: str, trust: str
) -> None:
    if reason.startswith("malformed signature"):
        document = b'{"region": "eu-central-1"}'
    refused(reason, document=document, signature=signature, trusted=[trust])


def test_an_unknown_region_is_refused_even_when_signed_by_a_trusted_key(trust: str) -> None:
    with Simulator() as sim:
        sim.set(IDENTITY + "document", {"$json": {"region": "xx-nowhere-1", "instanceId": "i-1"}})
        forged = served(sim)
    refused(
        "unknown region 'xx-nowhere-1': no AWS certificate for it",
        document=forged["document"],
        signature=forged["signature"],
        trusted=[trust],
    )


def test_rsa2048_that_is_not_signed_data_is_refused(trust: str) -> None:
    refused("malformed rsa2048: not base64", rsa2048=b"%%%", trusted=[trust])
    refused("malformed rsa2048: not a PKCS#7 SignedData", rsa2048=b"MIIBCgKCAQEA", trusted=[trust])
    refused("no signature given", document=b'{"region": "us-east-1"}')


def test_an_error_is_an_imds_error_and_a_value_error() -> None:
    with pytest.raises(IdentityVerificationError) as caught:
        verify_mapping({"document": "{}", "signature": 5})
    assert isinstance(caught.value, IMDSError) and isinstance(caught.value, ValueError)
    assert str(caught.value) == "malformed signature: not text"


def test_the_plain_client_does_not_import_cryptography() -> None:
    code = (
        "import sys, ec2_metadata_core, ec2_metadata_core.client, ec2_metadata_core.cli, "
        "ec2_metadata_core.identity; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('cryptography', 'asn1crypto')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the CLI ------------------------------------------------------------------------


def write_proof(
    tmp_path: Path, proof: Dict[str, bytes], trust: Optional[str] = None
) -> Dict[str, str]:
    paths = {}
    for name, body in proof.items():
        path = tmp_path / name
        path.write_bytes(body)
        paths[name] = str(path)
    if trust is not None:
        (tmp_path / "sim.pem").write_text(trust)
        paths["trust"] = str(tmp_path / "sim.pem")
    return paths


def test_cli_verifies_the_local_instance(signed_sim: Simulator, tmp_path: Path, trust: str) -> None:
    (tmp_path / "sim.pem").write_text(trust)
    proc = cli("identity", "--trust", str(tmp_path / "sim.pem"), endpoint=signed_sim.url)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["document"]["instanceId"] == "i-0123456789abcdef0"
    assert set(out["verified"]) == {"signature", "rsa2048"}
    untrusted = cli("identity", endpoint=signed_sim.url)
    line = assert_one_line_error(untrusted, 1)
    assert line == (
        "ec2-metadata-core: error: bad signature: it does not verify with the certificate "
        "for eu-central-1"
    )


def test_cli_verifies_files_received_from_elsewhere(
    tmp_path: Path, proof: Dict[str, bytes], trust: str
) -> None:
    paths = write_proof(tmp_path, proof, trust)
    proc = cli(
        "identity",
        "--document",
        paths["document"],
        "--rsa2048",
        paths["rsa2048"],
        "--trust",
        paths["trust"],
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["verified"] == {"rsa2048": "trusted:" + fingerprint(trust)}
    real = cli(
        "identity",
        "--document",
        str(DATA / "rspamd-iid1.json"),
        "--signature",
        str(DATA / "rspamd-iid1.signature"),
    )
    assert real.returncode == 0, real.stderr
    assert json.loads(real.stdout)["verified"] == {"signature": "aws:us-east-1:rsa"}
    (tmp_path / "bad").write_bytes(proof["document"] + b" ")
    tampered = cli(
        "identity",
        "--document",
        str(tmp_path / "bad"),
        "--signature",
        paths["signature"],
        "--trust",
        paths["trust"],
    )
    assert assert_one_line_error(tampered, 1).startswith("ec2-metadata-core: error: bad signature")


def fingerprint(pem: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    return x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256()).hex()


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--document", "{doc}"], 2, "--document needs --signature or --rsa2048"),
        (["--signature", "{sig}"], 2, "--signature needs --document"),
        (
            ["--document", "/nonexistent", "--signature", "{sig}"],
            2,
            "--document /nonexistent: No such file",
        ),
        (["--rsa2048", "{sig}"], 1, "malformed rsa2048"),
        (
            ["--rsa2048", "{rsa}", "--trust", "/nonexistent.pem"],
            2,
            "--trust /nonexistent.pem: no such file",
        ),
        (["--rsa2048", "{rsa}", "--trust", "{doc}"], 1, "{doc}: not a PEM certificate"),
    ],
)
def test_cli_bad_input_is_one_line(
    tmp_path: Path, proof: Dict[str, bytes], args: Any, code: int, message: str
) -> None:
    paths = write_proof(tmp_path, proof)
    fill = {"doc": paths["document"], "sig": paths["signature"], "rsa": paths["rsa2048"]}
    proc = cli("identity", *[a.format(**fill) for a in args])
    line = assert_one_line_error(proc, code)
    assert message.format(**fill) in line, line


def test_simulate_writes_its_certificate_and_signs_again_after_set(tmp_path: Path) -> None:
    """The rehearsal a user runs: `simulate --identity-cert`, `identity --trust`, `simulate set`."""
    cert = tmp_path / "sim.pem"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ec2_metadata_core",
            "simulate",
            "--port=0",
            f"--identity-cert={cert}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), server.stderr.read() if server.stderr else url
        first = cli("identity", "--trust", str(cert), endpoint=url)
        assert first.returncode == 0, first.stderr
        document = {"accountId": "111122223333", "instanceId": "i-0abcabcabcabcabca"}
        document.update(region="ap-southeast-2", pendingTime="2026-12-02T10:00:00Z")
        value = json.dumps(document)
        changed = cli("simulate", "set", "--json", IDENTITY + "document", value, endpoint=url)
        assert changed.returncode == 0, changed.stderr
        second = cli("identity", "--trust", str(cert), endpoint=url)
        assert second.returncode == 0, second.stderr
        assert json.loads(second.stdout)["document"] == document
    finally:
        server.terminate()
        server.wait(timeout=30)
