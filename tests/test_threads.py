"""One object, many threads: one token, each path fetched once, no lost or doubled work.

Python 3.12 dropped the lock ``functools.cached_property`` took, so the seed's
attributes could be computed (and fetched) once per racing thread there;
``lazy.cached_property`` locks per attribute instead.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List

import pytest

from ec2_metadata_core import EC2Metadata, IMDSError, TokenTimeoutError
from ec2_metadata_core.lazy import LazyObject, cached_property
from ec2_metadata_core.once import MISSING, Once
from ec2_metadata_core.simulator import Fault, Simulator

THREADS = 32

CACHED_READS = [
    ("ami_id", "meta-data/ami-id"),
    ("availability_zone", "meta-data/placement/availability-zone"),
    ("instance_id", "meta-data/instance-id"),
    ("instance_type", "meta-data/instance-type"),
    ("mac", "meta-data/mac"),
    ("region", "dynamic/instance-identity/document"),
    ("account_id", "dynamic/instance-identity/document"),
    ("instance_profile_name", "meta-data/iam/info"),
    ("security_groups", "meta-data/security-groups"),
    ("public_ipv4", "meta-data/public-ipv4"),
    ("user_data", "user-data"),
    ("network_interfaces", "meta-data/network/interfaces/macs/"),
    ("tags", "meta-data/tags/instance/"),
]


def run_together(count: int, work: Callable[[int], Any]) -> List[Any]:
    """Run ``work(i)`` on ``count`` threads released at once; re-raise any failure."""
    barrier = threading.Barrier(count)
    results: List[Any] = [None] * count
    errors: List[BaseException] = []

    def main(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=main, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


@pytest.mark.imds_simulator(latency=0.01)
def test_32_threads_share_one_token_and_fetch_each_path_once(
    imds_simulator: Simulator,
) -> None:
    metadata = EC2Metadata()

    def work(index: int) -> Dict[str, Any]:
        # each thread starts at a different attribute, so every one is contended
        shift = index % len(CACHED_READS)
        names = [name for name, _ in CACHED_READS[shift:] + CACHED_READS[:shift]]
        seen = {name: getattr(metadata, name) for name in names}
        seen["tag Name"] = metadata.tags["Name"]
        seen["role"] = metadata.iam_security_credentials
        return seen

    results = run_together(THREADS, work)
    stats = imds_simulator.stats
    assert stats.token_requests == 1
    for _, path in CACHED_READS:
        assert stats.by_path["GET /latest/" + path] == 1, path
    # uncached: exactly one fetch per access, none lost, none doubled
    assert stats.by_path["GET /latest/meta-data/iam/security-credentials/"] == THREADS
    assert all(result == results[0] for result in results)
    # every thread got the very same cached objects
    assert all(
        result["network_interfaces"] is results[0]["network_interfaces"] for result in results
    )
    assert results[0]["region"] == "eu-central-1"


@pytest.mark.imds_simulator(latency=0.01)
def test_threads_reading_one_interface_fetch_each_path_once(imds_simulator: Simulator) -> None:
    metadata = EC2Metadata()
    mac = metadata.mac
    names = ["subnet_id", "vpc_id", "private_ipv4s", "ipv4_associations", "device_number"]

    def work(index: int) -> List[Any]:
        interface = metadata.network_interfaces[mac]
        return [getattr(interface, name) for name in names]

    results = run_together(THREADS, work)
    assert all(result == results[0] for result in results)
    base = "GET /latest/meta-data/network/interfaces/macs/{}/".format(mac)
    stats = imds_simulator.stats
    for item in ("subnet-id", "vpc-id", "local-ipv4s", "public-ipv4s", "device-number"):
        assert stats.by_path[base + item] == 1, item
    assert stats.token_requests == 1


@pytest.mark.imds_simulator(latency=0.01, keep_alive=True)
def test_kept_alive_connections_are_reused_across_threads(imds_simulator: Simulator) -> None:
    metadata = EC2Metadata()
    run_together(THREADS, lambda i: metadata.instance_action)
    opened = imds_simulator.stats.connections
    assert 1 <= opened <= THREADS + 1
    run_together(8, lambda i: metadata.instance_action)
    assert imds_simulator.stats.connections == opened


@pytest.mark.parametrize("same_attribute", [True, False], ids=["same", "different"])
def test_threads_queued_behind_a_failed_token_share_the_failure(
    imds_simulator_factory: Callable[..., Simulator], same_attribute: bool
) -> None:
    sim = imds_simulator_factory(silent=True)
    metadata = EC2Metadata(endpoint=sim.url, timeout=1, attempts=1)
    names = [name for name, _ in CACHED_READS[:8]]
    failures = run_together(
        8, lambda i: _token_error(metadata, names[0] if same_attribute else names[i])
    )
    assert all(isinstance(failure, TokenTimeoutError) for failure in failures)
    # one silent PUT for all eight, not eight seconds of PUTs in turn
    assert sim.stats.token_requests == 1


def _token_error(metadata: EC2Metadata, name: str) -> BaseException:
    with pytest.raises(TokenTimeoutError) as caught:
        getattr(metadata, name)
    return caught.value


# -- lazy.cached_property itself ------------------------------------------------------


class Counted(LazyObject):
    def __init__(self) -> None:
        super().__init__()
        self.calls: Dict[str, int] = {"slow": 0, "flaky": 0}
        self.fail = True
        self.slow_failure = False
        self.other_started = threading.Event()

    @cached_property
    def slow(self) -> object:
        self.calls["slow"] += 1
        time.sleep(0.05)  # widen the race window: unlocked, every thread would compute
        if self.slow_failure:
            raise RuntimeError("slow and failed")
        return object()

    @cached_property
    def flaky(self) -> str:
        self.calls["flaky"] += 1
        if self.fail:
            raise RuntimeError("first try fails")
        return "ok"

    @cached_property
    def waits_for_other(self) -> bool:
        return self.other_started.wait(5)

    @cached_property
    def other(self) -> str:
        self.other_started.set()
        return "other"


def test_cached_property_computes_once_under_contention() -> None:
    obj = Counted()
    results = run_together(THREADS, lambda i: obj.slow)
    assert obj.calls["slow"] == 1
    assert all(result is results[0] for result in results)


def test_cached_property_locks_per_attribute_not_per_object() -> None:
    # If one lock guarded the whole object, 'other' could not run while
    # 'waits_for_other' holds it, and the wait would time out (False).
    obj = Counted()
    results = run_together(2, lambda i: obj.waits_for_other if i == 0 else obj.other)
    assert results == [True, "other"]


def test_cached_property_does_not_cache_a_failure() -> None:
    obj = Counted()
    with pytest.raises(RuntimeError):
        obj.flaky  # noqa: B018
    obj.fail = False
    assert obj.flaky == "ok"
    assert obj.flaky == "ok"
    assert obj.calls["flaky"] == 2


def test_threads_waiting_on_a_failed_computation_share_its_error() -> None:
    obj = Counted()
    obj.slow_failure = True
    errors = run_together(8, lambda i: _runtime_error(lambda: obj.slow))
    assert obj.calls["slow"] == 1
    assert all(error is errors[0] for error in errors)
    obj.slow_failure = False
    assert obj.slow is obj.slow  # a later access computes afresh
    assert obj.calls["slow"] == 2


def _runtime_error(read: Callable[[], Any]) -> BaseException:
    with pytest.raises(RuntimeError) as caught:
        read()
    return caught.value


def test_cached_property_clears_with_del_and_clear_all() -> None:
    obj = Counted()
    first = obj.slow
    del obj.slow
    second = obj.slow
    obj.clear_all()
    third = obj.slow
    assert obj.calls["slow"] == 3
    assert first is not second and second is not third


def test_concurrent_del_and_reads_never_raise() -> None:
    obj = Counted()
    obj.fail = False

    def work(index: int) -> None:
        for _ in range(200):
            if index % 2:
                obj.clear_all()
            else:
                assert obj.flaky == "ok"

    run_together(8, work)


# -- once: what the attributes and the token share ----------------------------------


def test_threads_reading_one_failing_tag_share_its_error(
    imds_simulator_factory: Callable[..., Simulator],
) -> None:
    sim = imds_simulator_factory()
    sim.add_fault(Fault("meta-data/tags/instance/Name", status=500, delay=0.1))
    tags = EC2Metadata(endpoint=sim.url, attempts=1).tags
    errors = run_together(8, lambda i: _imds_error(lambda: tags["Name"]))
    # One slow failing read for the eight, not eight in turn: each got its error.
    assert all(error is errors[0] for error in errors)


def _imds_error(read: Callable[[], Any]) -> BaseException:
    with pytest.raises(IMDSError) as caught:
        read()
    return caught.value


def test_once_hands_waiters_only_the_failures_it_shares() -> None:
    once = Once(shared=(LookupError,))
    calls: List[int] = []

    def compute() -> str:
        calls.append(1)
        time.sleep(0.02)  # the others queue on the lock meanwhile
        raise RuntimeError("not shared")

    errors = run_together(4, lambda i: _runtime_error(lambda: once.run(lambda: MISSING, compute)))
    assert len(calls) == 4  # each thread tried for itself
    assert len({id(error) for error in errors}) == 4
    assert once.failure is None


def test_once_forgets_a_failure_it_is_told_to() -> None:
    once = Once()
    with pytest.raises(RuntimeError):
        once.run(lambda: MISSING, _fail)
    failed = once.failure
    assert isinstance(failed, RuntimeError)
    with once.lock:
        once.failure = None  # what clearing the token does
    assert once.run(lambda: MISSING, lambda: "fresh") == "fresh"


def _fail() -> str:
    raise RuntimeError("failed")
