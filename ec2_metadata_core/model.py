"""The metadata model: ``EC2Metadata`` and the objects under it, the seed's API and more.

Attribute names, types, ``None``/``[]`` for absent values and caching rules
follow the ec2-metadata library (see the project README), so code written
against it runs unchanged. Values that change while the instance runs are
uncached; everything else caches on first access (``del`` one attribute or
call ``clear_all()`` to refetch), computed once however many threads ask.

This module is the schema: each attribute declares what it reads, written
in the machinery of ``lazy.py``; the JSON documents' types and parsers are
``documents.py``'s (docs/architecture.md walks a read from here to the
socket). The declarations give the snapshot its keys and its plan (``plan.py``).
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Mapping, Optional, Tuple

from . import parse
from .documents import (
    IamInfoDict,
    IamSecurityCredentialsDict,
    InstanceIdentityDocumentDict,
    SpotInstanceAction,
    iam_info,
    identity_document,
    spot_action,
    string_field,
)
from .errors import MalformedResponseError, PathNotFoundError, TagsNotEnabledError
from .lazy import (
    LazyObject,
    Leaf,
    Listing,
    UncachedLeaf,
    cached,
    read_listed,
    segment,
    uncached,
    under,
)
from .once import MISSING, OncePerName
from .root import META, Root

# The public names of this module; the document types are defined in
# documents.py and are importable from here too, as ec2-metadata has them in one module.
__all__ = [
    "CATEGORIES",
    "NOT_METADATA",
    "EC2Metadata",
    "IamInfoDict",
    "IamSecurityCredentialsDict",
    "InstanceIdentityDocumentDict",
    "InstanceTags",
    "NetworkInterface",
    "PublicKey",
    "SpotInstanceAction",
    "ec2_metadata",
]

_MACS = "meta-data/network/interfaces/macs/"
_IDENTITY_DOCUMENT = "dynamic/instance-identity/document"
_IAM_INFO = "meta-data/iam/info"
_BLOCK_DEVICE_MAPPING = "meta-data/block-device-mapping/"
_ROLES_DIR = "meta-data/iam/security-credentials/"


class InstanceTags(Mapping[str, str]):
    """Tag name -> value; names come from one listing, values are fetched on demand."""

    LISTING = "meta-data/tags/instance/"

    def __init__(self, names: List[str], parent: EC2Metadata) -> None:
        self._map: Dict[str, Optional[str]] = dict.fromkeys(names)
        self.parent = parent
        # Threads reading one tag fetch it once; threads reading different
        # tags do not wait for each other.
        self._once = OncePerName()

    @classmethod
    def path(cls, name: str) -> str:
        return cls.LISTING + segment(name)

    def __getitem__(self, name: str) -> str:
        value = self._map[name]
        if value is None:
            value = self._once[name].run(lambda: self._held(name), lambda: self._fetch(name))
        return value

    def _held(self, name: str) -> object:
        value = self._map[name]
        return MISSING if value is None else value

    def _fetch(self, name: str) -> str:
        path = self.path(name)
        value = self._map[name] = parse.text(path, self.parent._read(path))
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __contains__(self, name: object) -> bool:
        return name in self._map  # named by the listing; no read needed

    def __len__(self) -> int:
        return len(self._map)

    def __repr__(self) -> str:
        return "InstanceTags({!r})".format(list(self._map))

    def present(self) -> Dict[str, str]:
        """Every tag with its value, less any the listing named that then answered 404.

        Listing then reading is not atomic: a tag removed in between is gone,
        not a failure (any other error still raises).
        """
        found = {}
        for name in self._map:
            try:
                found[name] = self[name]
            except PathNotFoundError:
                continue
        return found


class _Child(LazyObject):
    """An object under EC2Metadata, named by one value, reading through its parent.

    Its directory is ``LISTING`` + its name + ``/``: the listing that names
    it declares ``each=`` its class. Equal when of one class, one name and one
    parent, like the seed's objects.
    """

    LISTING = ""

    def __init__(self, parent: Optional[EC2Metadata]) -> None:
        super().__init__()
        self.parent = ec2_metadata if parent is None else parent

    def _name(self) -> object:  # pragma: no cover - interface
        raise NotImplementedError

    def _path(self, item: str) -> str:
        return "{}{}/{}".format(self.LISTING, self._name(), item)

    def _read(self, item: str) -> Optional[bytes]:
        return self.parent._read(self._path(item))

    def __repr__(self) -> str:
        return "{}({!r})".format(type(self).__name__, self._name())

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and self._name() == other._name()
            and self.parent is other.parent
        )

    __hash__ = None  # type: ignore[assignment]


# Each public IPv4 of an interface -> the private IPs it maps to.
_ASSOCIATIONS = Listing("public-ipv4s", parse.names, child=under("ipv4-associations/"))


class NetworkInterface(_Child):
    """One network interface, as listed in ``EC2Metadata.network_interfaces``."""

    LISTING = _MACS

    def __init__(self, mac: str, parent: Optional[EC2Metadata] = None) -> None:
        super().__init__(parent)
        self.mac = mac

    def _name(self) -> str:
        return self.mac

    device_number = Leaf("device-number", parse.integer, "The device number, e.g. 0.")
    interface_id = Leaf("interface-id", parse.text, "The ENI ID, e.g. 'eni-12345'.")
    ipv4_prefix = Leaf("ipv4-prefix", parse.lines, "IPv4 prefixes delegated to the interface.")
    ipv6_prefix = Leaf("ipv6-prefix", parse.lines, "IPv6 prefixes delegated to the interface.")
    ipv6s = Leaf("ipv6s", parse.lines, "The interface's IPv6 addresses; [] if none.")
    network_card_index = Leaf(
        "network-card-index", parse.optional_integer, "The network card index, or None."
    )
    owner_id = Leaf("owner-id", parse.text, "The AWS account ID of the interface's owner.")
    private_hostname = Leaf("local-hostname", parse.text, "The interface's private hostname.")
    private_ipv4s = Leaf("local-ipv4s", parse.lines, "The interface's private IPv4 addresses.")
    public_hostname = Leaf(
        "public-hostname", parse.optional_text, "The interface's public DNS name, or None."
    )
    public_ipv4s = Leaf(
        "public-ipv4s", parse.lines, "The public (Elastic) IPv4 addresses; [] if none."
    )
    security_groups = Leaf(
        "security-groups", parse.lines, "Names of the interface's security groups."
    )
    security_group_ids = Leaf(
        "security-group-ids", parse.lines, "IDs of the interface's security groups."
    )
    subnet_id = Leaf("subnet-id", parse.text, "The ID of the interface's subnet.")
    subnet_ipv4_cidr_block = Leaf(
        "subnet-ipv4-cidr-block", parse.optional_text, "The subnet's IPv4 CIDR block, or None."
    )
    subnet_ipv6_cidr_blocks = Leaf(
        "subnet-ipv6-cidr-blocks", parse.lines, "The subnet's IPv6 CIDR blocks; [] if none."
    )
    vpc_id = Leaf("vpc-id", parse.text, "The ID of the interface's VPC.")
    vpc_ipv4_cidr_block = Leaf(
        "vpc-ipv4-cidr-block", parse.optional_text, "The VPC's primary IPv4 CIDR block, or None."
    )
    vpc_ipv4_cidr_blocks = Leaf(
        "vpc-ipv4-cidr-blocks", parse.lines, "The VPC's IPv4 CIDR blocks; [] if none."
    )
    vpc_ipv6_cidr_blocks = Leaf(
        "vpc-ipv6-cidr-blocks", parse.lines, "The VPC's IPv6 CIDR blocks; [] if none."
    )

    @cached(listing=_ASSOCIATIONS)
    def ipv4_associations(self) -> Dict[str, List[str]]:
        """Public IP -> the private IPs it maps to, for each public IP of the interface."""
        # The addresses name paths: each must be a plain name.
        names = parse.plain_names(self._path(_ASSOCIATIONS.item), self.public_ipv4s)
        return read_listed(self, _ASSOCIATIONS, names, parse.lines)


class PublicKey(_Child):
    """A public key from ``EC2Metadata.public_keys``."""

    LISTING = "meta-data/public-keys/"

    def __init__(self, index: int, parent: Optional[EC2Metadata] = None) -> None:
        super().__init__(parent)
        self.index = index

    def _name(self) -> int:
        return self.index

    openssh_key = Leaf("openssh-key", parse.optional_text, "The key in OpenSSH format, or None.")


def _public_keys(path: str, body: Optional[bytes]) -> List[Tuple[int, str]]:
    """``(index, name)`` of each ``INDEX=NAME`` line of the public-keys listing."""
    keys = []
    for line in parse.lines(path, body):
        index, sep, name = line.partition("=")
        if not sep or not (index.isascii() and index.isdigit()):  # int() fails on "²"
            raise MalformedResponseError(path, "INDEX=NAME listing")
        keys.append((int(index), name))
    return keys


def _first(path: str, body: Optional[bytes]) -> List[str]:
    """The first line of a listing: the role whose credentials the instance has."""
    return parse.names(path, body)[:1]


# The listings of EC2Metadata (items are paths: its directory is /latest/).
_INTERFACES = Listing(NetworkInterface.LISTING, parse.names, each=NetworkInterface)
_KEYS = Listing(
    PublicKey.LISTING,
    lambda path, body: [str(index) for index, name in _public_keys(path, body)],
    each=PublicKey,
)
_TAGS = Listing(InstanceTags.LISTING, parse.names, child=InstanceTags.path)
_block_device = under(_BLOCK_DEVICE_MAPPING)
_role_credentials = under(_ROLES_DIR)
_BLOCK_DEVICES = Listing(_BLOCK_DEVICE_MAPPING, parse.names, child=_block_device)
_ROLES = Listing(_ROLES_DIR, _first, child=_role_credentials)


def _category(entry: str) -> str:
    return META + entry  # as listed: the service names these, not a tag's owner


# The categories the service lists: a full snapshot also reads those the model does not know.
CATEGORIES = Listing(META, parse.entries, child=_category)

# Public attributes of EC2Metadata that are not metadata (and so no snapshot key):
# the client, its URLs, clear_all and from_reader (``Root``'s), and two path helpers.
NOT_METADATA = frozenset(
    (
        "client",
        "service_url",
        "metadata_url",
        "dynamic_url",
        "userdata_url",
        "clear_all",
        "from_reader",
        "role_credentials_path",
        "block_device_path",
    )
)


class EC2Metadata(Root):
    """The data of the EC2 metadata service, one attribute a value.

    ``session``, if given, is the ``requests.Session`` every request goes
    through; ``pool_manager`` (or a ``urllib3.PoolManager`` as ``session``, as
    ec2-metadata 3.0 takes it) routes them through urllib3 instead. With either,
    errors are also the exceptions that library raises (see ``compat``). The
    keyword arguments override the AWS settings read from the environment and
    ``~/.aws/config`` (see ``config.resolve``); they are read on first use, so
    the ``ec2_metadata`` singleton follows the environment the program has when
    it first reads a value. ``client`` brings its own settings and session:
    giving either beside it is a ``ConfigError``, not silently ignored.

    The constructor, ``client``, the URLs and the reads are ``Root``'s
    (``root.py``); this class is the attributes.
    """

    # -- identity ----------------------------------------------------------

    @uncached(sources=("instance_identity_document",))
    def account_id(self) -> str:
        """The current AWS account ID, e.g. '123456789012'."""
        return string_field(_IDENTITY_DOCUMENT, self.instance_identity_document, "accountId")

    ami_id = Leaf("meta-data/ami-id", parse.text, "The ID of the AMI used to launch the instance.")
    ami_launch_index = Leaf(
        "meta-data/ami-launch-index",
        parse.integer,
        "The index of the instance in the launch request, zero-based.",
    )
    ami_manifest_path = Leaf(
        "meta-data/ami-manifest-path",
        parse.text,
        "The AMI manifest path in S3, or '(unknown)' on EBS-backed AMIs.",
    )
    ancestor_ami_ids = Leaf(
        "meta-data/ancestor-ami-ids",
        parse.lines,
        "AMI IDs of instances rebundled to create this AMI; [] if none.",
    )
    autoscaling_target_lifecycle_state = UncachedLeaf(
        "meta-data/autoscaling/target-lifecycle-state",
        parse.optional_text,
        "Uncached. The target Auto Scaling lifecycle state, or None outside an ASG.",
    )
    availability_zone = Leaf(
        "meta-data/placement/availability-zone", parse.text, "The current AZ, e.g. 'eu-west-1a'."
    )
    availability_zone_id = Leaf(
        "meta-data/placement/availability-zone-id",
        parse.optional_text,
        "The cross-account ID of the current AZ, e.g. 'use1-az6', or None.",
    )
    block_device_mapping_names = Leaf(
        _BLOCK_DEVICE_MAPPING,
        parse.names,
        "Names in the block device mapping (ami, root, ebsN, ephemeralN, swap).",
        in_snapshot=False,  # the keys of block_device_mapping
    )
    domain = Leaf(
        "meta-data/services/domain",
        parse.text,
        "The domain for AWS resources in the region, e.g. 'amazonaws.com'.",
    )
    events_maintenance_history = UncachedLeaf(
        "meta-data/events/maintenance/history",
        parse.json_list,
        "Uncached. Completed or canceled scheduled events (list of dicts).",
    )
    events_maintenance_scheduled = UncachedLeaf(
        "meta-data/events/maintenance/scheduled",
        parse.json_list,
        "Uncached. Active scheduled maintenance events (list of dicts).",
    )
    events_recommendations_rebalance = UncachedLeaf(
        "meta-data/events/recommendations/rebalance",
        parse.optional_json_object,
        "Uncached. The rebalance recommendation ({'noticeTime': ...}), or None.",
    )
    hostname = Leaf(
        "meta-data/hostname",
        parse.optional_text,
        "The instance's hostname as the OS sees it (private DNS, IP or resource name).",
    )
    iam_info = Leaf(
        _IAM_INFO,
        iam_info,
        "The IAM instance profile (IamInfoDict), or None if no role is attached.",
    )
    iam_role_names = UncachedLeaf(
        _ROLES_DIR,
        parse.names,
        "Uncached. Names of the roles with credentials (usually one; [] if none).",
    )
    identity_credentials_ec2_info = Leaf(
        "meta-data/identity-credentials/ec2/info",
        parse.optional_json_object,
        "Information about the EC2 identity credentials, or None.",
    )
    identity_credentials_ec2 = UncachedLeaf(
        "meta-data/identity-credentials/ec2/security-credentials/ec2-instance",
        parse.optional_json_object,
        "Uncached, secret. The instance identity credentials, or None.",
    )
    instance_action = UncachedLeaf(
        "meta-data/instance-action",
        parse.text,
        "Uncached. Whether the instance will reboot for bundling, e.g. 'none'.",
    )
    instance_id = Leaf("meta-data/instance-id", parse.text, "The instance ID, e.g. 'i-123456'.")
    instance_identity_document = Leaf(
        _IDENTITY_DOCUMENT,
        identity_document,
        "The instance identity document (InstanceIdentityDocumentDict).",
    )
    instance_identity_pkcs7 = Leaf(
        "dynamic/instance-identity/pkcs7",
        parse.optional_text,
        "PKCS7 signature of the identity document, or None.",
    )
    instance_identity_signature = Leaf(
        "dynamic/instance-identity/signature",
        parse.optional_text,
        "SHA256 signature of the identity document, or None.",
    )
    instance_identity_rsa2048 = Leaf(
        "dynamic/instance-identity/rsa2048",
        parse.optional_text,
        "RSA-2048 PKCS7 signature of the identity document, or None.",
    )
    instance_life_cycle = Leaf(
        "meta-data/instance-life-cycle",
        parse.text,
        "The purchasing option: 'spot', 'on-demand', 'scheduled' or 'capacity-block'.",
    )
    instance_type = Leaf(
        "meta-data/instance-type", parse.text, "The instance type, e.g. 't2.nano'."
    )
    ipv6 = Leaf(
        "meta-data/ipv6",
        parse.optional_text,
        "The IPv6 address of the primary interface, or None.",
    )
    kernel_id = Leaf(
        "meta-data/kernel-id", parse.optional_text, "The kernel ID, or None if it has none."
    )
    mac = Leaf("meta-data/mac", parse.text, "The MAC address of the primary interface.")
    partition = Leaf(
        "meta-data/services/partition",
        parse.text,
        "The AWS partition, e.g. 'aws', 'aws-us-gov' or 'aws-cn'.",
    )
    placement_group_name = Leaf(
        "meta-data/placement/group-name",
        parse.optional_text,
        "The placement group, or None.",
    )
    placement_host_id = Leaf(
        "meta-data/placement/host-id",
        parse.optional_text,
        "The Dedicated Host ID, or None.",
    )
    placement_partition_number = Leaf(
        "meta-data/placement/partition-number",
        parse.optional_integer,
        "The partition number in a partition placement group, or None.",
    )
    private_hostname = Leaf(
        "meta-data/local-hostname", parse.text, "The private IPv4 DNS hostname of the instance."
    )
    private_ipv4 = Leaf("meta-data/local-ipv4", parse.text, "The private IPv4 of the instance.")
    product_codes = Leaf(
        "meta-data/product-codes", parse.lines, "Marketplace product codes; [] if none."
    )
    public_hostname = Leaf(
        "meta-data/public-hostname",
        parse.optional_text,
        "The public DNS hostname, or None if the instance is not public.",
    )
    public_ipv4 = Leaf(
        "meta-data/public-ipv4",
        parse.optional_text,
        "The public IPv4 address, or None if the instance is not public.",
    )
    ramdisk_id = Leaf("meta-data/ramdisk-id", parse.optional_text, "The RAM disk ID, or None.")
    reservation_id = Leaf(
        "meta-data/reservation-id", parse.text, "The ID of the reservation, e.g. 'r-1234'."
    )
    security_groups = Leaf(
        "meta-data/security-groups", parse.lines, "Names of the instance's security groups."
    )
    spot_instance_action = UncachedLeaf(
        "meta-data/spot/instance-action",
        spot_action,
        "Uncached. The SpotInstanceAction about to happen, or None.",
    )
    spot_termination_time = UncachedLeaf(
        "meta-data/spot/termination-time",
        parse.optional_text,
        "Uncached. When a spot instance will be terminated (ISO 8601), or None.",
    )
    system = Leaf(
        "meta-data/system",
        parse.optional_text,
        "The virtualization system: 'nitro' or 'xen', or None.",
    )
    user_data = Leaf(
        "user-data",
        lambda path, body: body,
        "The raw user data (bytes), or None if there is none.",
    )

    # -- derived values ----------------------------------------------------

    @cached(sources=("instance_identity_document",))
    def region(self) -> str:
        """The region the instance runs in, e.g. 'eu-west-1'."""
        return string_field(_IDENTITY_DOCUMENT, self.instance_identity_document, "region")

    @uncached(sources=("iam_info",))
    def instance_profile_arn(self) -> Optional[str]:
        """The ARN of the instance profile, from ``iam_info``, or None."""
        info = self.iam_info
        return None if info is None else string_field(_IAM_INFO, info, "InstanceProfileArn")

    @uncached(sources=("iam_info",))
    def instance_profile_id(self) -> Optional[str]:
        """The ID of the instance profile, from ``iam_info``, or None."""
        info = self.iam_info
        return None if info is None else string_field(_IAM_INFO, info, "InstanceProfileId")

    @uncached(sources=("instance_profile_arn",))
    def instance_profile_name(self) -> Optional[str]:
        """The instance profile name, the last part of its ARN, or None."""
        arn = self.instance_profile_arn
        return None if arn is None else arn.rsplit("/", 1)[-1]

    @uncached(listing=_ROLES)
    def iam_security_credentials(self) -> Optional[IamSecurityCredentialsDict]:
        """Uncached, secret. Credentials of the role attached to the instance, or None.

        The role is the one ``iam/security-credentials/`` lists, which can differ
        from the instance profile's name.
        """
        roles = self.iam_role_names
        if not roles:
            return None
        path = self.role_credentials_path(roles[0])
        return parse.optional_json_object(path, self._read(path))  # type: ignore[return-value]

    @staticmethod
    def role_credentials_path(role: str) -> str:
        return _role_credentials(role)

    @staticmethod
    def block_device_path(name: str) -> str:
        return _block_device(name)

    @cached(listing=_BLOCK_DEVICES)
    def block_device_mapping(self) -> Dict[str, str]:
        """Block device mapping name -> device, e.g. {'root': '/dev/xvda'}."""
        return read_listed(self, _BLOCK_DEVICES, self.block_device_mapping_names, parse.text)

    @cached(listing=_INTERFACES)
    def network_interfaces(self) -> Dict[str, NetworkInterface]:
        """MAC address -> NetworkInterface, for every attached interface."""
        macs = _INTERFACES.entries(_MACS, self._read(_MACS))
        return {mac: NetworkInterface(mac, self) for mac in macs}

    @cached(sources=("mac", "network_interfaces"))
    def primary_network_interface(self) -> NetworkInterface:
        """The interface whose MAC is ``mac``: a name for it that needs no MAC.

        The same object as ``network_interfaces[mac]`` (templates and scripts
        that run on many instances cannot know the MAC in advance).
        """
        mac = self.mac
        listed = self.network_interfaces.get(mac)
        return listed if listed is not None else NetworkInterface(mac, self)

    @cached(listing=_KEYS)
    def public_keys(self) -> Dict[str, PublicKey]:
        """Key name -> PublicKey, from the ``INDEX=NAME`` lines IMDS lists; {} if none."""
        path = _KEYS.item
        return {
            name: PublicKey(index, self) for index, name in _public_keys(path, self._read(path))
        }

    @cached(listing=_TAGS)
    def tags(self) -> InstanceTags:
        """The instance's tags (InstanceTags); raises TagsNotEnabledError if tags are off."""
        path = _TAGS.item
        body = self._read(path)
        if body is None:
            raise self._error(TagsNotEnabledError())
        return InstanceTags(parse.names(path, body), self)


# The shared instance, ``ec2_metadata_core.ec2_metadata``, as the ec2-metadata
# library has it: made here, with the class, so that a child made without a
# parent (``NetworkInterface(mac)``) reads through it. Nothing is read or
# resolved until a value is: settings come from the environment of the first read.
ec2_metadata = EC2Metadata()
