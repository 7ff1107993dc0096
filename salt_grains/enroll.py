"""Accept an autoscaled minion's pending key on the proof of its signed identity document.

The ``imds_ec2_enroll`` engine (engines/imds_ec2_enroll.py) feeds each proof
posted to salt-api's webhook to ``Enroller.decide``; this module holds the
rules, so they are one piece of Python and no untrusted text is ever rendered
into a template or YAML (a reactor SLS would have to).

A proof is a JSON object: ``id`` (the minion id), ``fingerprint`` (of the
minion's public key, as ``salt-key -f`` prints it), ``document`` and
``signature`` and/or ``rsa2048`` (the texts IMDS serves). The pending key is
accepted only if every rule holds:

1. a signature verifies with AWS's certificate for the document's region (or a
   certificate in ``trust``);
2. ``accountId`` is in ``accounts``; ``regions``, ``availability_zones`` and
   ``image_ids``, when set, hold the document's values;
3. the minion id is ``minion_id`` (default ``{instance_id}``) filled in with
   the document's ``instanceId``;
4. this instance id never enrolled with another key (trust on first use,
   remembered in the master's cache, bank ``imds_ec2/enrolled``); the same key
   again is a no-op;
5. ``pendingTime`` is at most ``max_age`` seconds before now (and not in the
   future by more than ``clock_skew``);
6. the pending key's fingerprint is the proof's.

Tags and the Auto Scaling group name are not signed and are never a rule.
Each decision is one log line (``imds_ec2 enroll: accepted ...`` or
``... refused <id>: <reason>``) and an event ``imds_ec2/enroll/accepted`` or
``.../refused``; a refused key stays pending, nothing is deleted.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import re
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Protocol, Sequence

from ec2_metadata_core.errors import IdentityVerificationError
from ec2_metadata_core.identity import Candidate, load_trusted, verify_identity

log = logging.getLogger(__name__)

BANK = "imds_ec2/enrolled"
HOOK = "imds_ec2/enroll"  # salt-api webhook path: POST /hook/imds_ec2/enroll
EVENT_PREFIX = "imds_ec2/enroll/"
DEFAULT_MAX_AGE = 600
DEFAULT_CLOCK_SKEW = 300
MAX_FIELD = 16 * 1024
REPOST_EVERY = 5  # seconds between posts of ``--wait``
SALT_MAJOR = 3008  # the master's key store and fingerprints as salt.key has them since 3008
_INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}\Z")
_MINION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_FINGERPRINT = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){15,63}\Z")


class Refused(Exception):
    """A rule did not hold; the message is the one-line reason."""


def shown(value: Any, limit: int = 64) -> str:
    """Untrusted text for a log line: quoted, escaped, cut."""
    text = value if isinstance(value, str) else repr(value)
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


def fingerprint(pem: bytes, hash_type: str = "sha256") -> str:
    """A public key's fingerprint as ``salt-key -f`` prints it (Salt 3008: over the whole PEM)."""
    digest = hashlib.new(hash_type, pem).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


class Keys(Protocol):
    """The master's key store, as the rules need it."""

    def pending_fingerprint(self, minion_id: str) -> Optional[str]: ...

    def accepted_fingerprint(self, minion_id: str) -> Optional[str]: ...

    def accept(self, minion_id: str) -> None: ...

    def reject(self, minion_id: str) -> None: ...


class Memory(Protocol):
    """Where enrolled instance ids are remembered (the master's cache)."""

    def fetch(self, bank: str, key: str) -> Any: ...

    def store(self, bank: str, key: str, data: Any) -> None: ...


class Decision(NamedTuple):
    accepted: bool
    minion_id: str
    reason: str

    def line(self) -> str:
        verb = "accepted" if self.accepted else "refused"
        return "imds_ec2 enroll: {} {}: {}".format(verb, shown(self.minion_id), self.reason)


def _strings(config: Mapping[str, Any], name: str) -> Optional[List[str]]:
    value = config.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError("{}: expected a list of strings".format(name))
    return [str(v) for v in value]


class Policy(NamedTuple):
    accounts: List[str]
    regions: Optional[List[str]]
    availability_zones: Optional[List[str]]
    image_ids: Optional[List[str]]
    minion_id: str
    max_age: float
    clock_skew: float
    trusted: List[Candidate]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Policy:
        """The engine's options, checked; ValueError names the bad one."""
        known = {
            "accounts",
            "regions",
            "availability_zones",
            "image_ids",
            "minion_id",
            "max_age",
            "clock_skew",
            "trust",
            "hook",
        }
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError("unknown option(s): {}".format(", ".join(unknown)))
        accounts = _strings(config, "accounts")
        if not accounts:
            raise ValueError("accounts: required (the AWS account ids whose instances may enroll)")
        pattern = config.get("minion_id", "{instance_id}")
        if not isinstance(pattern, str) or "{instance_id}" not in pattern:
            raise ValueError("minion_id: must be a string containing {instance_id}")
        try:
            pattern.format(instance_id="i-0")
        except (KeyError, IndexError, ValueError):
            raise ValueError("minion_id: only {instance_id} may be filled in") from None
        numbers = {}
        for name, default in (("max_age", DEFAULT_MAX_AGE), ("clock_skew", DEFAULT_CLOCK_SKEW)):
            value = config.get(name, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError("{}: expected a number of seconds".format(name))
            numbers[name] = float(value)
        try:
            trusted = load_trusted(_strings(config, "trust") or [])
        except IdentityVerificationError as exc:
            raise ValueError("trust: {}".format(exc)) from None
        return cls(
            accounts,
            _strings(config, "regions"),
            _strings(config, "availability_zones"),
            _strings(config, "image_ids"),
            pattern,
            numbers["max_age"],
            numbers["clock_skew"],
            trusted,
        )


def _pending_time(text: str) -> datetime.datetime:
    try:
        value = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        raise Refused("malformed pendingTime {}".format(shown(text))) from None
    return value.replace(tzinfo=datetime.timezone.utc)


def _allowed(value: str, allowed: Optional[Sequence[str]], what: str) -> None:
    if allowed is not None and value not in allowed:
        raise Refused("{} {} is not allowed".format(what, shown(value)))


class Enroller:
    """Applies a Policy to proofs, against the master's keys and memory."""

    def __init__(self, policy: Policy, keys: Keys, memory: Memory) -> None:
        self.policy = policy
        self.keys = keys
        self.memory = memory

    def decide(self, proof: Any, now: Optional[datetime.datetime] = None) -> Decision:
        """Check one proof and accept its key if every rule holds."""
        minion_id = proof.get("id") if isinstance(proof, Mapping) else None
        label = minion_id if isinstance(minion_id, str) else "?"
        try:
            return self._decide(proof, now or datetime.datetime.now(datetime.timezone.utc))
        except Refused as exc:
            return Decision(False, label, str(exc))

    def _decide(self, proof: Any, now: datetime.datetime) -> Decision:
        if not isinstance(proof, Mapping):
            raise Refused("malformed proof: not a JSON object")
        fields: Dict[str, Optional[str]] = {}
        for name in ("id", "fingerprint", "document", "signature", "rsa2048"):
            value = proof.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > MAX_FIELD):
                raise Refused("malformed proof: {} is not text".format(name))
            fields[name] = value or None
        minion_id, finger = fields["id"], fields["fingerprint"]
        if minion_id is None or not _MINION_ID.match(minion_id):
            raise Refused("malformed proof: no valid minion id")
        if finger is None or not _FINGERPRINT.match(finger):
            raise Refused("malformed proof: no valid key fingerprint")
        policy = self.policy
        try:
            verified = verify_identity(
                fields["document"], fields["signature"], fields["rsa2048"], policy.trusted
            )
        except IdentityVerificationError as exc:
            raise Refused(str(exc)) from None
        _allowed(verified.account_id, policy.accounts, "account")
        _allowed(verified.region, policy.regions, "region")
        _allowed(verified.availability_zone, policy.availability_zones, "availability zone")
        _allowed(verified.image_id, policy.image_ids, "image")
        instance_id = verified.instance_id
        if not _INSTANCE_ID.match(instance_id):
            raise Refused("malformed instanceId {}".format(shown(instance_id)))
        expected = policy.minion_id.format(instance_id=instance_id)
        if minion_id != expected:
            raise Refused("minion id is not {} (the instance's)".format(shown(expected)))
        enrolled = self.memory.fetch(BANK, instance_id) or {}
        known = enrolled.get("fingerprint") if isinstance(enrolled, Mapping) else None
        if known is not None and known != finger:
            raise Refused("instance {} enrolled before with another key".format(instance_id))
        if known == finger and self.keys.accepted_fingerprint(minion_id) == finger:
            reason = "{} already enrolled with this key".format(instance_id)
            return Decision(True, minion_id, reason)
        started = _pending_time(verified.pending_time)
        age = (now - started).total_seconds()
        if age > policy.max_age:
            raise Refused(
                "stale pendingTime {} ({:.0f} s old, max_age {:.0f})".format(
                    verified.pending_time, age, policy.max_age
                )
            )
        if -age > policy.clock_skew:
            raise Refused("pendingTime {} is in the future".format(verified.pending_time))
        pending = self.keys.pending_fingerprint(minion_id)
        if pending is None:
            raise Refused("no pending key for this minion id")
        if pending != finger:
            raise Refused("the pending key's fingerprint is not the proof's")
        self.keys.accept(minion_id)
        if self.keys.accepted_fingerprint(minion_id) != finger:  # swapped meanwhile
            self.keys.reject(minion_id)  # rejected, not deleted: salt-key shows it
            raise Refused("the accepted key's fingerprint is not the proof's; rejected")
        self.memory.store(
            BANK,
            instance_id,
            {"fingerprint": finger, "minion_id": minion_id, "account_id": verified.account_id},
        )
        how = ", ".join(sorted(verified.verified))
        return Decision(
            True,
            minion_id,
            "instance {} of account {} in {} ({} verified)".format(
                instance_id, verified.account_id, verified.availability_zone, how
            ),
        )


class SaltKeys:
    """The master's keys through ``salt.key``, as ``salt-key`` sees them."""

    def __init__(self, opts: Mapping[str, Any]) -> None:
        import salt.key  # type: ignore[import-untyped]

        self.key = salt.key.get_key(dict(opts))
        self.hash_type = str(opts.get("hash_type") or "sha256")

    def _finger(self, state: str, minion_id: str) -> Optional[str]:
        entry = self.key.cache.fetch("keys", minion_id)
        if not isinstance(entry, Mapping) or entry.get("state") != state:
            return None
        pub = entry.get("pub")
        return fingerprint(pub.encode("utf-8"), self.hash_type) if isinstance(pub, str) else None

    def pending_fingerprint(self, minion_id: str) -> Optional[str]:
        return self._finger("pending", minion_id)

    def accepted_fingerprint(self, minion_id: str) -> Optional[str]:
        return self._finger("accepted", minion_id)

    def accept(self, minion_id: str) -> None:
        # match_dict, not match: a minion id is never read as a glob.
        self.key.accept(match_dict={"minions_pre": [minion_id]})

    def reject(self, minion_id: str) -> None:
        self.key.reject(match_dict={"minions": [minion_id]}, include_accepted=True)


def serve(opts: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """The engine's loop: one decision, logged and fired, per proof on the bus."""
    import salt.cache  # type: ignore[import-untyped]
    import salt.utils.event  # type: ignore[import-untyped]
    import salt.version  # type: ignore[import-untyped]

    try:
        if salt.version.__saltstack_version__.major < SALT_MAJOR:
            # Earlier masters keep keys as files and fingerprint them otherwise.
            raise ValueError("needs Salt {} or later on the master".format(SALT_MAJOR))
        policy = Policy.from_config(config)
        hook = config.get("hook", HOOK)
        if not isinstance(hook, str) or not re.match(r"[A-Za-z0-9_./-]+\Z", hook):
            raise ValueError("hook: expected a URL path under /hook/")
    except ValueError as exc:
        log.error("imds_ec2 enroll: not started: %s", exc)
        return
    tag = "salt/netapi/hook/" + hook.strip("/")
    enroller = Enroller(policy, SaltKeys(opts), salt.cache.factory(dict(opts)))
    with salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=True) as bus:
        while True:
            event = bus.get_event(full=True, wait=1, tag=tag)
            if not event or event.get("tag") != tag:
                continue
            data = event.get("data")
            proof = data.get("post") if isinstance(data, Mapping) else None
            try:
                decision = enroller.decide(proof)
            except Exception as exc:  # the key store failed: say so, keep serving
                log.error("imds_ec2 enroll: could not decide: %s", " ".join(str(exc).split()))
                continue
            log.warning("%s", decision.line())
            outcome = "accepted" if decision.accepted else "refused"
            bus.fire_event(
                {"id": decision.minion_id, "reason": decision.reason}, EVENT_PREFIX + outcome
            )


# -- the minion's side ------------------------------------------------------------------


def clean_key(text: str) -> str:
    """The public key as the minion sends it to the master (Salt's ``clean_key``)."""
    return "\n".join(text.strip().splitlines())


def make_proof(
    minion_id: str, public_key: str, bodies: Mapping[str, Optional[bytes]]
) -> Dict[str, str]:
    """The proof a minion posts: its id, its key's fingerprint, the document and signatures."""
    proof = {"id": minion_id, "fingerprint": fingerprint(clean_key(public_key).encode("utf-8"))}
    for name in ("document", "signature", "rsa2048"):
        body = bodies.get("dynamic/instance-identity/" + name)
        if body is not None:
            proof[name] = body.decode("utf-8", "replace")
    return proof


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m saltext.imds_ec2.enroll --id ID [--post URL]``: build (and send) the proof."""
    import argparse
    import json
    import os
    import sys
    import time
    import urllib.request

    from ec2_metadata_core.client import IMDSClient
    from ec2_metadata_core.errors import IMDSError

    parser = argparse.ArgumentParser(
        prog="python -m saltext.imds_ec2.enroll",
        description="Print this instance's enrollment proof for the imds_ec2_enroll engine "
        "(JSON), or POST it to salt-api's webhook.",
    )
    parser.add_argument("--id", required=True, help="the minion id (the instance id by default)")
    parser.add_argument(
        "--public-key",
        default="/etc/salt/pki/minion/minion.pub",
        help="the minion's public key (default: %(default)s)",
    )
    parser.add_argument("--post", metavar="URL", help="e.g. https://salt:8000/hook/imds_ec2/enroll")
    parser.add_argument(
        "--wait",
        type=float,
        metavar="S",
        help="with --post: post again every %d s until the master has accepted the key "
        "(the minion then holds minion_master.pub beside its key), for at most S seconds"
        % REPOST_EVERY,
    )
    args = parser.parse_args(argv)
    try:
        try:
            with open(args.public_key, encoding="ascii") as handle:
                public_key = handle.read(64 * 1024)
        except OSError as exc:
            message = "--public-key {}: {}".format(args.public_key, exc.strerror or exc)
            raise ValueError(message) from None
        client = IMDSClient()  # the AWS SDK settings: environment, shared config
        try:
            paths = ["dynamic/instance-identity/" + n for n in ("document", "signature", "rsa2048")]
            bodies = client.get_many(paths)
        finally:
            client.close()
        if bodies.get(paths[0]) is None:
            raise IMDSError("this instance serves no identity document")
        proof = make_proof(args.id, public_key, bodies)
        body = json.dumps(proof).encode("utf-8")
        if args.post is None:
            sys.stdout.write(body.decode("utf-8") + "\n")
            return 0
        request = urllib.request.Request(
            args.post, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )

        def send() -> str:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return str(answer.read(4096).decode("utf-8", "replace"))

        said = send()
        if args.wait is not None:
            # Accepted: the minion's next sign-in stores the master's key beside its own.
            accepted = os.path.join(os.path.dirname(args.public_key), "minion_master.pub")
            deadline = time.monotonic() + args.wait
            again = time.monotonic() + REPOST_EVERY
            while not os.path.exists(accepted):
                if time.monotonic() > deadline:
                    raise ValueError(
                        "not accepted after {:g} s: see the master's log".format(args.wait)
                    )
                time.sleep(0.5)
                if time.monotonic() >= again:  # the engine may have missed it (restarting)
                    said = send()
                    again = time.monotonic() + REPOST_EVERY
        sys.stdout.write(said + "\n")
        return 0
    except (OSError, ValueError, IMDSError) as exc:
        sys.stderr.write("enroll: error: {}\n".format(" ".join(str(exc).split())))
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
