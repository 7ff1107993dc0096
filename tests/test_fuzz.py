"""Property-based fuzzing of everything that reads bytes IMDS sent, and of the flattener.

IMDS is trusted, but the bytes reaching the client pass proxies, containers
and bugs: whatever arrives, a parser returns a value or raises the package's
own error (``IMDSError``; ``http1.Malformed`` inside the HTTP reader, which
the exchange turns into one), and a value it returns can be written out as
JSON again. Examples are bounded so the file runs in a few seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ec2_metadata_core import (
    IMDSError,
    MalformedResponseError,
    SpotInstanceAction,
    documents,
    http1,
    parse,
)
from ec2_metadata_core.errors import FormatError
from ec2_metadata_core.flat import IDENTIFIER, flatten, flatten_with_paths, to_env
from ec2_metadata_core.snapshot import to_json, user_data_json
from ec2_metadata_core.transport import Response

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# For properties whose examples are bigger structures.
FEWER = settings(FUZZ, max_examples=50)
PATH = "meta-data/fuzzed"

# -- bodies -------------------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Spellings Python's json reader takes that are not JSON, or not writable again.
NASTY_JSON = st.sampled_from(
    [
        b"NaN",
        b"[Infinity]",
        b'{"a": -Infinity}',
        b"1e999",
        b'"\\ud800"',
        b'{"\\udfff": 1}',
        b'"\\ud83d\\ude00"',
        b"[" * 40 + b"]" * 40,
        b'{"a":' * 40 + b"1" + b"}" * 40,
        b"[" * 5000,
        b"9" * 5000,
        b"\xef\xbb\xbf{}",
        b'{"action": "stop", "time": "9999-12-31T23:59:59-23:59"}',
        b'{"action": "terminate", "time": "0001-01-01T00:00:00+00:01"}',
    ]
)


@st.composite
def mangled(draw: st.DrawFn, documents: st.SearchStrategy[bytes]) -> bytes:
    """A document cut short, with bytes spliced in, or as it was."""
    body = draw(documents)
    how = draw(st.sampled_from(["as is", "cut", "splice"]))
    if how == "cut" and body:
        return body[: draw(st.integers(0, len(body) - 1))]
    if how == "splice":
        at = draw(st.integers(0, len(body)))
        return body[:at] + draw(st.binary(max_size=4)) + body[at:]
    return body


JSON_TEXT = JSON_VALUES.map(lambda value: json.dumps(value).encode("utf-8"))
JSON_BODIES = st.one_of(mangled(JSON_TEXT), NASTY_JSON, st.binary(max_size=64))

JSON_READERS: List[Callable[[str, Optional[bytes]], Any]] = [
    parse.json_document,
    parse.optional_json_object,
    parse.json_list,
    documents.iam_info,
    documents.identity_document,
    documents.spot_action,
]


def assert_json_writable(value: Any) -> None:
    """What a face does with a value: strict JSON (no NaN), UTF-8 out."""
    json.dumps(to_json(value), allow_nan=False, ensure_ascii=False).encode("utf-8")


@FUZZ
@given(body=JSON_BODIES)
def test_json_leaves_return_writable_values_or_raise_ours(body: bytes) -> None:
    for reader in JSON_READERS:
        try:
            value = reader(PATH, body)
        except IMDSError as exc:
            assert "\n" not in str(exc)
            continue
        assert_json_writable(value)


@FEWER
@given(value=JSON_VALUES)
def test_json_documents_read_back_as_written(value: Any) -> None:
    assert parse.json_document(PATH, json.dumps(value).encode("utf-8")) == value
    assert parse.json_document(PATH, json.dumps(value, indent=2).encode("utf-8")) == value


@FUZZ
@given(document=st.dictionaries(st.sampled_from(["region", "accountId", "x"]), JSON_SCALARS))
def test_identity_fields_are_strings_or_malformed(document: Dict[str, Any]) -> None:
    body = json.dumps(document).encode("utf-8")
    for key in ("region", "accountId"):
        try:
            value = documents.string_field(PATH, documents.identity_document(PATH, body), key)
        except MalformedResponseError:
            assert not isinstance(document.get(key), str)
        else:
            assert value == document[key]


# -- listings and text leaves -------------------------------------------------------

ENTRY = st.text(
    alphabet=st.characters(
        exclude_characters="\n\r/", categories=("L", "M", "N", "P", "S", "Z", "Cc")
    ),
    min_size=1,
    max_size=12,
)


@FUZZ
@given(body=st.binary(max_size=128))
def test_listings_of_any_bytes_are_entries_or_malformed(body: bytes) -> None:
    try:
        entries = parse.listing(PATH, body)
        values = parse.lines(PATH, body)
    except MalformedResponseError:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return  # not UTF-8: the one reason a listing is malformed
        raise
    assert len(entries) == len(values)
    assert all(isinstance(e, str) and "\n" not in e for e in entries + values)
    assert all(value for value in values)


@FUZZ
@given(
    entries=st.lists(st.tuples(ENTRY, st.booleans()), max_size=8),
    ending=st.sampled_from(["\n", "\r\n"]),
    final=st.booleans(),
)
def test_listings_read_back_every_entry(
    entries: List[Tuple[str, bool]], ending: str, final: bool
) -> None:
    text = ending.join(name + ("/" if directory else "") for name, directory in entries)
    body = (text + (ending if final and entries else "")).encode("utf-8")
    assert parse.listing(PATH, body) == [name for name, _ in entries]
    assert parse.lines(PATH, body) == [name + ("/" if d else "") for name, d in entries]


# Digits of other scripts, superscripts, signs and underscores: int() takes some.
NUMBERISH = st.text(alphabet="0123456789_+- \u0663\u00b2\uff15", max_size=6).map(str.encode)


@FUZZ
@given(body=st.one_of(st.binary(max_size=64), NUMBERISH))
def test_text_and_integer_leaves_are_values_or_malformed(body: bytes) -> None:
    try:
        assert parse.text(PATH, body) == parse.optional_text(PATH, body) == body.decode("utf-8")
    except (MalformedResponseError, UnicodeDecodeError):
        with pytest.raises(MalformedResponseError):
            parse.text(PATH, body)
    try:
        number = parse.integer(PATH, body)
    except MalformedResponseError:
        assert not re.fullmatch(rb"\s*-?[0-9]{1,18}\s*", body)
    else:
        assert re.fullmatch(r"-?[0-9]+", body.decode("utf-8").strip())  # ASCII digits only
        assert number == int(body)


# A gzip member header (deflate, no flags): what follows decides if it inflates.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"


@FUZZ
@given(
    body=st.one_of(st.binary(max_size=64), st.binary(max_size=48).map(lambda b: GZIP_HEADER + b))
)
def test_user_data_is_text_or_base64_never_an_error(body: bytes) -> None:
    value = user_data_json(body)
    assert value["encoding"] in ("text", "base64")
    assert_json_writable(value)


# -- times ----------------------------------------------------------------------------

OFFSETS = st.timedeltas(
    min_value=dt.timedelta(hours=-23, minutes=-59), max_value=dt.timedelta(hours=23, minutes=59)
).map(lambda delta: dt.timezone(dt.timedelta(minutes=int(delta.total_seconds() // 60))))
MOMENTS = st.datetimes(
    min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31), timezones=OFFSETS
)


# Times near the ends of the calendar, with any offset: UTC may be out of range.
def with_offset(moment: dt.datetime, minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return "{}{}{:02d}:{:02d}".format(moment.isoformat(), sign, *divmod(abs(minutes), 60))


EDGE_TIMES = st.builds(
    with_offset,
    st.one_of(
        st.integers(0, 3000).map(lambda m: dt.datetime(1, 1, 1) + dt.timedelta(minutes=m)),
        st.integers(0, 3000).map(lambda m: dt.datetime(9999, 12, 31, 23) - dt.timedelta(minutes=m)),
        st.datetimes(),
    ),
    st.integers(-(23 * 60 + 59), 23 * 60 + 59),
)


@FUZZ
@given(
    value=st.one_of(st.text(max_size=40), EDGE_TIMES, JSON_SCALARS, st.lists(st.text(), max_size=2))
)
def test_timestamps_are_utc_or_malformed(value: Any) -> None:
    try:
        moment = parse.timestamp(PATH, value)
    except MalformedResponseError:
        return
    assert moment.utcoffset() == dt.timedelta(0)


@FUZZ
@given(moment=MOMENTS, zulu=st.booleans())
def test_timestamps_read_back_the_moment_written(moment: dt.datetime, zulu: bool) -> None:
    text = moment.astimezone(dt.timezone.utc).isoformat() if zulu else moment.isoformat()
    if zulu:
        text = text.replace("+00:00", "Z")
    assert parse.timestamp(PATH, text) == moment


@FUZZ
@given(
    action=st.one_of(st.sampled_from(["stop", "terminate", "hibernate"]), st.text(max_size=8)),
    time=st.one_of(
        MOMENTS.map(lambda m: m.isoformat()), EDGE_TIMES, st.text(max_size=30), JSON_SCALARS
    ),
)
def test_spot_actions_are_read_or_malformed(action: str, time: Any) -> None:
    body = json.dumps({"action": action, "time": time}).encode("utf-8")
    try:
        notice = documents.spot_action(PATH, body)
    except MalformedResponseError:
        return
    assert isinstance(notice, SpotInstanceAction)
    as_json = to_json(notice)
    assert as_json["action"] == action
    assert parse.timestamp(PATH, as_json["time"]) == notice.time  # a face's copy reads back


# -- the HTTP response reader ----------------------------------------------------------

ReadResult = Union[Response, http1.Malformed, None]


def read(chunks: List[bytes], method: str = "GET", close: bool = True) -> ReadResult:
    """Feed ``chunks`` as recv() would hand them; then the end of the stream, if ``close``."""
    parser = http1.ResponseParser(method)
    try:
        for chunk in chunks:
            response = parser.feed(chunk)
            if response is not None:
                return response
        return parser.eof() if close else None
    except http1.Malformed as exc:
        return exc


def split(data: bytes, cuts: List[int]) -> List[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:]) if b > a] or [b""]


def same(one: ReadResult, other: ReadResult) -> bool:
    if isinstance(one, Response) and isinstance(other, Response):
        return (one.status, one.headers, one.body) == (other.status, other.headers, other.body)
    return type(one) is type(other)


# Numbers int() or str.isdigit() take but HTTP does not: signs, underscores,
# superscripts, hex prefixes, spaces, absurd sizes.
ODD_NUMBERS = st.sampled_from(
    ["-1", "-6", "+3", "1_0", "\u00b2", "\u00b9\u00b2", " 3 ", "0x10", "", "9" * 20, "0"]
)


@st.composite
def http_answers(draw: st.DrawFn, odd: bool = False) -> Tuple[bytes, int, bytes]:
    """An HTTP/1.x answer framed one of the three ways; ``odd``: one number may be odd."""
    status = draw(st.integers(100, 599))
    body = draw(st.binary(max_size=64))
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    oddity = draw(ODD_NUMBERS) if odd and draw(st.booleans()) else None
    head = [
        "HTTP/1.1 {} Whatever".format(status if oddity is None or framing != "close" else oddity)
    ]
    head += [
        "X-{}: {}".format(i, v)
        for i, v in enumerate(draw(st.lists(st.text("ab c", max_size=5), max_size=3)))
    ]
    if framing == "length":
        head.append("Content-Length: {}".format(len(body) if oddity is None else oddity))
        payload = body
    elif framing == "chunked":
        head.append("Transfer-Encoding: chunked")
        pieces = [p for p in split(body, draw(st.lists(st.integers(0, 64), max_size=3))) if p]
        sizes = [b"%x" % len(p) for p in pieces]
        if oddity is not None and sizes:
            sizes[0] = oddity.encode("latin-1")
        chunks = (b"%s\r\n%s\r\n" % (size, piece) for size, piece in zip(sizes, pieces))
        payload = b"".join(chunks) + b"0\r\n\r\n"
    else:
        head.append("Connection: close")
        payload = body
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" if draw(st.booleans()) else b""
    return interim + "\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + payload, status, body


@FUZZ
@given(answer=http_answers(), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_well_formed_answers_read_back_however_they_arrive(
    answer: Tuple[bytes, int, bytes], cuts: List[int]
) -> None:
    data, status, body = answer
    got = read(split(data, cuts))
    if 100 <= status < 200:
        assert got is not None and not isinstance(got, Response)  # only interim answers
        return
    assert isinstance(got, Response), got
    assert got.status == status
    expected_body = b"" if status in (204, 304) else body
    assert got.body == expected_body


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=200), mangled(http_answers(odd=True).map(lambda answer: answer[0]))
    ),
    cuts=st.lists(st.integers(0, 400), max_size=6),
    method=st.sampled_from(["GET", "HEAD", "PUT"]),
    close=st.booleans(),
)
def test_any_bytes_give_an_answer_nothing_yet_or_malformed(
    data: bytes, cuts: List[int], method: str, close: bool
) -> None:
    got = read(split(data, cuts), method, close)
    assert got is None or isinstance(got, (Response, http1.Malformed))
    assert same(got, read([data], method, close))  # however the bytes were cut


# -- the flattener ---------------------------------------------------------------------

SNAPSHOTS = st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=5)


def leaf_paths(value: Any, path: Tuple[str, ...] = ()) -> Dict[Tuple[str, ...], Any]:
    """Rule 1 of flat.py, spelled out: the leaves a flat export must hold, by path."""
    if isinstance(value, dict):
        found: Dict[Tuple[str, ...], Any] = {}
        for key, item in value.items():
            found.update(leaf_paths(item, (*path, key)))
        return found
    if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        found = {}
        for index, item in enumerate(value):
            found.update(leaf_paths(item, (*path, str(index))))
        return found
    return {path: value}


@FEWER
@given(snap=SNAPSHOTS, root=st.sampled_from(["", "ec2"]))
def test_flattening_loses_nothing_and_names_are_identifiers(
    snap: Dict[str, Any], root: str
) -> None:
    flat = flatten_with_paths(snap, root)
    assert all(IDENTIFIER.match(key) for key in flat)
    expected = leaf_paths(snap, (root,) if root else ())
    assert {path: value for path, value in flat.values()} == expected
    assert flatten_with_paths(dict(reversed(list(snap.items()))), root) == flat
    values = flatten(snap, root)
    texts = ["\n".join(map(str, v)) if isinstance(v, list) else str(v) for v in values.values()]
    if any("\0" in text for text in texts):  # no shell variable can carry a NUL: refused
        with pytest.raises(FormatError, match="NUL"):
            to_env(values, "ec2_")
        return
    env = to_env(values, "ec2_")
    assert all("export ec2_{}=".format(key) in env for key in values)
