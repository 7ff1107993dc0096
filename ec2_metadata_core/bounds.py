"""How much an endpoint may make us read, hold and wait: the bounds, in one place.

Whatever answers at the configured endpoint may not be IMDS (a neighbour in
a container network, a mistyped URL), and what IMDS itself serves is
written by people who are not root on the instance. So every read is
bounded in bytes, entries, depth and time, each bound well above what the
real service sends (the figures beside each) and each failing in one line.
``docs/trust.md`` states them for users; this module is their one definition.
"""

from __future__ import annotations

# One answer's header block. Real answers carry a few hundred bytes.
MAX_HEAD = 64 * 1024
# One answer's body. The largest the service sends is user data, at most
# 16 KiB (before base64); every other value is under 2 KiB.
MAX_BODY = 1024 * 1024
# All the bodies of one pass (a gather) together. A real gather reads some
# 20 KiB plus the user data; 5,000 tags of 100 bytes are 0.5 MiB. What a
# dump writes can be six times what it read (a control character becomes
# ``\u0001`` in JSON): 2 MiB keeps a dump's memory well under 100 MB.
MAX_PASS_BYTES = 2 * 1024 * 1024
# The session token. Real tokens are some 56 bytes; each request carries it.
MAX_TOKEN = 512
# Entries in one listing. EC2 allows 50 tags an instance, a few interfaces,
# one role, some 30 categories.
MAX_LISTING_ENTRIES = 10_000
# Categories the model does not know (discovered under meta-data/): how many
# directory levels below meta-data/ a dump follows (the real tree is at most
# 6: network/interfaces/macs/MAC/ipv4-associations/IP), and how many paths
# of such categories one pass reads in all (none exist today).
MAX_UNKNOWN_DEPTH = 8
MAX_UNKNOWN_PATHS = 1_000
# User data decompressed (gzip'd user data is shown as text): 64 times the
# service's own 16 KiB cap on what it stores.
MAX_USER_DATA = 1024 * 1024
# Of one pass, when no ``deadline`` is set: this many rounds of one
# request's worst case (every attempt timing out, with back-off between).
# A gather's longest chain of dependent reads is four (token, interface
# list, an interface's addresses, an address's association).
DEADLINE_ROUNDS = 4
