"""The codec: value -> bytes -> SHA-256 -> zstd chunks, and back."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerflow import codec
from ledgerflow.preview import PREVIEW_MAX, preview

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=30,
)
# Values whose JSON round trip is not exact: they must take the pickle path.
inexact = st.recursive(
    st.tuples(st.integers())
    | st.sampled_from([math.nan, math.inf, -math.inf])
    | st.sets(st.integers(), max_size=4)
    | st.binary(max_size=20)
    | st.complex_numbers(allow_nan=False)
    | st.dictionaries(st.integers(), st.integers(), min_size=1, max_size=3),
    lambda children: (
        st.lists(children, min_size=1, max_size=3)
        | st.dictionaries(st.text(max_size=3), children, min_size=1, max_size=3)
        | st.tuples(children, children)
    ),
    max_leaves=10,
)


def compress_chunks(raw: bytes, chunk_size: int = codec.DEFAULT_CHUNK_SIZE) -> list[bytes]:
    """Raw bytes as stored chunks (each its own zstd frame)."""
    return codec.blob_from_raw(codec.PICKLE, raw, chunk_size).chunks


def join_chunks(frames: list[bytes], raw_size: int) -> bytearray:
    """A blob's chunks back to exactly raw_size bytes, as the ledger reads them."""
    out = bytearray(raw_size)
    reader = codec.ChunkReader(frames, raw_size, max(raw_size, 1))
    reader.readinto(out)
    reader.sha_after_draining()
    assert reader.consumed == raw_size
    return out


def roundtrip(value):
    blob = codec.encode_blob(value, chunk_size=64)
    raw = join_chunks(blob.chunks, blob.raw_size)
    assert codec.sha256(raw) == blob.sha
    return blob, codec.decode(blob.encoding, raw)


def same(a, b) -> bool:
    """Equality that also holds for NaN in the same places, and checks exact types."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


@given(json_values)
@settings(max_examples=200, deadline=None)
def test_json_exact_values_use_json_and_round_trip(value):
    blob, back = roundtrip(value)
    assert blob.encoding == codec.JSON
    assert same(value, back)


@given(inexact)
@settings(max_examples=200, deadline=None)
def test_inexact_values_take_the_pickle_path_and_round_trip(value):
    blob, back = roundtrip(value)
    assert blob.encoding == codec.PICKLE
    assert same(value, back)


@pytest.mark.parametrize(
    "value",
    [(1, 2), {1: "a"}, float("nan"), float("inf"), [1, (2,)], {"a": {2: 3}}, "\ud800", b"x",
     {"a": float("nan")}, True.__class__, -0.0],
)  # fmt: skip
def test_edge_values(value):
    blob, back = roundtrip(value)
    if value == -0.0 and isinstance(value, float):
        assert blob.encoding == codec.JSON and math.copysign(1, back) == -1
    else:
        assert same(value, back) or value is back


def test_subclasses_of_json_types_are_pickled():
    from collections import OrderedDict

    class MyInt(int):
        pass

    for value in (OrderedDict(a=1), MyInt(3), [MyInt(1)]):
        blob, back = roundtrip(value)
        assert blob.encoding == codec.PICKLE and type(back) is type(value)


def test_identical_values_have_one_sha():
    assert codec.encode_blob({"a": [1, 2]}).sha == codec.encode_blob({"a": [1, 2]}).sha
    assert codec.encode_blob([1, 2]).sha != codec.encode_blob((1, 2)).sha


def test_chunks_are_independent_zstd_frames():
    raw = bytes(range(256)) * 1000
    blob = codec.blob_from_raw(codec.PICKLE, raw, chunk_size=100_000)
    assert len(blob.chunks) == 3
    assert all(c.startswith(ZSTD_MAGIC) for c in blob.chunks)
    assert join_chunks(blob.chunks, len(raw)) == raw


def test_decompression_is_bounded():
    frame = compress_chunks(b"\0" * 1_000_000)[0]
    with pytest.raises(ValueError):
        codec.decompress_chunk(frame, max_size=1000)


def test_scalar_value_column():
    assert codec.scalar_value(0.5) == 0.5
    assert codec.scalar_value(True) == 1
    assert codec.scalar_value("short") == "short"
    assert codec.scalar_value("x" * 1000) is None
    assert codec.scalar_value(float("nan")) is None
    assert codec.scalar_value(2**70) is None
    assert codec.scalar_value([1]) is None


class Hostile:
    def __repr__(self):
        raise RuntimeError("repr must not be called")


def test_preview_is_bounded_and_never_calls_repr():
    assert "Hostile" in preview(Hostile())
    text = preview({"alpha": 1, "nested": {"name": "resnet50_v2"}, "items": list(range(1000))})
    assert "alpha" in text and "resnet50_v2" in text and len(text) <= PREVIEW_MAX
    assert len(preview("x" * 10**6)) == PREVIEW_MAX


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=64))
@settings(max_examples=100, deadline=None)
def test_chunking_round_trips_any_bytes(raw, chunk_size):
    chunks = compress_chunks(raw, chunk_size)
    assert len(chunks) == max(1, -(-len(raw) // chunk_size))
    assert join_chunks(chunks, len(raw)) == raw


@given(st.binary(max_size=4096))
def test_the_builtin_and_openssl_sha256_agree(data):
    # Small values are hashed by CPython's own SHA-256, large ones by OpenSSL: same digests.
    import hashlib

    small, large = codec.new_sha256(len(data)), codec.new_sha256(codec._OPENSSL_FROM)
    assert type(small) is not type(large)
    small.update(data)
    large.update(data)
    assert small.hexdigest() == large.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_preview_shows_a_containers_structure_and_keeps_its_words():
    """Issue 28 item 5: a dict holding a frame reads as a dict, not word soup, and every key
    and scalar leaf is still there for search."""
    pd = pytest.importorskip("pandas")
    value = {"crime": pd.DataFrame({"movie_title": ["Skin Trade"], "gross": [1]}),
             "quartiles": [7097125, 2], "note": ("a", None)}  # fmt: skip
    assert preview(value) == ("{crime: <pandas.DataFrame shape=1x2 columns: movie_title gross "
                              "rows: [Skin Trade, 1]>, quartiles: [7097125, 2], note: (a, None)}")  # fmt: skip
    frame = pd.DataFrame({"x": [1, 2, 3, 4], "y": list("abcd")})
    assert preview(frame) == "pandas.DataFrame shape=4x2 columns: x y rows: [1, a]; [2, b]; [3, c]"
    np = pytest.importorskip("numpy")
    grid = np.arange(12.0).reshape(3, 4)[:, ::2]  # not contiguous
    assert preview(grid) == "numpy.ndarray shape=3x2 dtype=float64 values: 0.0 2.0 4.0 6.0 8.0 10.0"
    assert preview(list(range(60))).endswith("49, … 60 items]")
    assert len(preview({"k": ["x" * 5000] * 10})) == PREVIEW_MAX


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)),
    st.just("x" * 70_000), st.just("\u00e9" * 40_000),
)  # fmt: skip


@settings(max_examples=300)
@given(_SCALARS, st.sampled_from([1024, 4096, codec.DEFAULT_CHUNK_SIZE]))
def test_a_plain_scalar_is_encoded_as_the_general_path_encodes_it(value, chunk_size):
    """encode_blob's short path for plain scalars gives the blob encode() + blob_from_raw()
    give: the same bytes, hash, frames and kept raw bytes."""
    fast = codec.encode_blob(value, chunk_size)
    general = codec.blob_from_raw(*codec.encode(value), chunk_size)
    assert fast == general
    assert (fast.frames, fast.raw, fast.spill_sizes) == (general.frames, general.raw, [])


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()),
       st.sampled_from([PREVIEW_MAX, 5, 1, 0, -1]))  # fmt: skip
def test_a_scalars_preview_is_the_walks(value, limit):
    """preview()'s short path for scalars writes what its walk writes."""
    walked = preview([value], limit + 2)  # in a list the walk takes it (without its brackets)
    if limit > 0 and len(walked) < limit + 2:
        assert preview(value, limit) == walked[1:-1]
    assert len(preview(value, limit)) <= max(limit, 1)


_JSON_TEXT = st.one_of(
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                 max_leaves=8).map(json.dumps),
    st.text(alphabet=' 0123456789-+.eE[]{}",:nultrufaseNIfiy\\x', max_size=12),
)  # fmt: skip


@given(_JSON_TEXT)
def test_json_is_decoded_as_json_loads_decodes_it(text):
    """decode()'s JSON path gives what json.loads gives (or raises as it does)."""
    try:
        expected: object = json.loads(text)
    except ValueError as e:
        with pytest.raises(type(e)):
            codec.decode(codec.JSON, text.encode("utf-8"))
        return
    got = codec.decode(codec.JSON, text.encode("utf-8"))
    assert repr(got) == repr(expected)
