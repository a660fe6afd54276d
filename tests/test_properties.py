"""Property-based tests (hypothesis): arbitrary input gives a result or the documented error, never a crash."""

from __future__ import annotations

import io
import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from lenet5.data import IDX_DTYPES, idx_bytes, parse_idx
from lenet5.errors import DataError, ImageError
from lenet5.imageprep import prepare_array, prepare_image

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_or_refuse(raw: bytes):
    try:
        return parse_idx(raw, "fuzz")
    except DataError as e:
        assert "\n" not in str(e) and str(e).startswith("fuzz:")
        return None


@FAST
@given(st.binary(max_size=200))
def test_idx_reader_on_arbitrary_bytes(raw):
    out = _parse_or_refuse(raw)
    if out is not None:  # anything accepted re-serialises to the same bytes
        assert idx_bytes(out) == raw


@FAST
@given(
    st.sampled_from(sorted(IDX_DTYPES)),
    st.lists(st.integers(0, 6), min_size=1, max_size=3),
    st.integers(-8, 8),
)
def test_idx_reader_on_valid_headers_with_wrong_lengths(code, dims, extra):
    itemsize = IDX_DTYPES[code].itemsize
    body = bytes(max(0, int(np.prod(dims)) * itemsize + extra))
    raw = struct.pack(">HBB", 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims) + body
    out = _parse_or_refuse(raw)
    exact = len(body) == int(np.prod(dims)) * itemsize
    assert (out is not None) == exact
    if out is not None:
        assert list(out.shape) == dims


def _prepare_or_refuse(fn, *args):
    try:
        digit = fn(*args)
    except ImageError as e:
        assert "\n" not in str(e)
        return None
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    return digit


@FAST
@given(arrays(np.uint8, st.tuples(st.integers(1, 64), st.integers(1, 64))))
def test_image_preprocessor_on_arbitrary_grey_arrays(a):
    _prepare_or_refuse(prepare_array, a)


@FAST
@given(arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(1, 40), st.sampled_from([1, 3, 4])),
              elements=st.one_of(st.floats(-2, 300), st.just(float("nan")))))  # fmt: skip
def test_image_preprocessor_on_arbitrary_float_arrays(a):
    _prepare_or_refuse(prepare_array, a if a.shape[2] != 1 else a[:, :, 0])


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=0, max_size=300))
def test_image_reader_on_arbitrary_file_bytes(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("fuzz") / "x.png"
    path.write_bytes(raw)
    _prepare_or_refuse(prepare_image, path)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(["PNG", "JPEG", "BMP", "TIFF", "WEBP"]), st.integers(1, 400))
def test_image_reader_on_truncated_real_files(tmp_path_factory, seed, fmt, cut):
    rng = np.random.default_rng(seed)
    img = Image.fromarray((rng.random((48, 40)) * 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    path = tmp_path_factory.mktemp("trunc") / f"x.{fmt.lower()}"
    path.write_bytes(buf.getvalue()[: max(0, len(buf.getvalue()) - cut)])
    _prepare_or_refuse(prepare_image, path)
