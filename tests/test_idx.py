"""IDX reader: every corruption gives BadDataError with a message; real files verify."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnist_edge.device.data import idx
from mnist_edge.device.data import mnist as data
from mnist_edge.device.errors import BadDataError, DataNotFoundError

from .conftest import mnist_dir, write_idx


def images_bytes(n=3, rows=28, cols=28, magic=2051, extra=b"", short=0):
    body = bytes(range(256)) * ((n * rows * cols) // 256 + 1)
    payload = struct.pack(">IIII", magic, n, rows, cols) + body[: n * rows * cols]
    return (payload[: len(payload) - short] if short else payload) + extra


def labels_bytes(labels=(1, 2, 3), magic=2049):
    return struct.pack(">II", magic, len(labels)) + bytes(labels)


def write(tmp_path, name, payload, compress=False):
    path = tmp_path / name
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_valid_files_round_trip(tmp_path, compress):
    arr = np.arange(2 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(2, 28, 28)
    path = tmp_path / ("x.gz" if compress else "x")
    write_idx(path, arr)
    got = idx.read_images(path)
    assert np.array_equal(got.array, arr)
    lab = tmp_path / "l"
    write_idx(lab, np.array([0, 9], np.uint8))
    assert idx.read_labels(lab).array.tolist() == [0, 9]


@pytest.mark.parametrize(
    "payload, message",
    [
        (images_bytes(magic=2049), "magic number 2049 is not 2051"),
        (images_bytes(magic=1234), "magic number 1234"),
        (images_bytes(rows=32, cols=32), "32x32"),
        (images_bytes(short=1), "truncated: header says 3 images"),
        (images_bytes(extra=b"\x00"), "trailing bytes"),
        (b"\x00\x00\x08", "too short for an IDX header"),
        (b"", "too short"),
        (images_bytes()[:10], "truncated IDX header"),
        (struct.pack(">IIII", 2051, 2**31, 28, 28), "more than"),
    ],
)
@pytest.mark.parametrize("compress", [False, True])
def test_corrupt_images(tmp_path, payload, message, compress):
    path = write(tmp_path, "bad", payload, compress)
    with pytest.raises(BadDataError, match=message) as e:
        idx.read_images(path)
    assert str(path) in str(e.value)


def test_label_out_of_range(tmp_path):
    with pytest.raises(BadDataError, match="label 10 at index 1"):
        idx.read_labels(write(tmp_path, "l", labels_bytes((3, 10, 2))))


def test_labels_magic(tmp_path):
    with pytest.raises(BadDataError, match="this is an IDX images file"):
        idx.read_labels(write(tmp_path, "l", images_bytes()))


def test_gzip_truncated_and_crc(tmp_path):
    gz = gzip.compress(images_bytes())
    with pytest.raises(BadDataError, match="truncated|corrupt"):
        idx.read_images(write(tmp_path, "t.gz", gz[: len(gz) - 12]))
    broken = bytearray(gz)
    broken[-8] ^= 0xFF  # CRC32 field
    with pytest.raises(BadDataError, match="corrupt gzip|CRC"):
        idx.read_images(write(tmp_path, "c.gz", bytes(broken)))


def test_gzip_bomb_is_not_decompressed(tmp_path):
    """A header for 1 image followed by 50 MB of zeros: refused after reading 785 bytes."""
    bomb = gzip.compress(struct.pack(">IIII", 2051, 1, 28, 28) + bytes(50_000_000), 9)
    assert len(bomb) < 100_000
    with pytest.raises(BadDataError, match="trailing bytes"):
        idx.read_images(write(tmp_path, "bomb.gz", bomb))


def test_count_mismatch(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(2, np.uint8))
    with pytest.raises(BadDataError, match="3 images but .* 2 labels"):
        data.load_split("test", tmp_path, verify=False)


def test_checksum_mismatch_is_refused(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(2, np.uint8))
    with pytest.raises(BadDataError, match="differs from the original MNIST"):
        data.load_split("test", tmp_path)


@settings(max_examples=int(__import__("os").environ.get("MNIST_EDGE_FUZZ", 200)),
          suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.binary(max_size=4000), st.booleans())
def test_fuzz_reader_raises_only_bad_data(tmp_path, blob, compress):
    path = write(tmp_path, "fuzz", blob, compress)
    for reader in (idx.read_images, idx.read_labels):
        try:
            reader(path)
        except BadDataError:
            pass


def test_bundled_test_split_verifies():
    images, labels = data.load_split("test", data.BUNDLED_DIR)
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert np.bincount(labels).tolist()[:3] == [980, 1135, 1032]


@pytest.mark.slow
def test_full_mnist_verifies():
    images, labels = data.load_split("train", mnist_dir())
    assert images.shape == (60000, 28, 28) and labels.max() == 9


def test_missing_files_message(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"has no train-images-idx3-ubyte\[.gz\]"):
        data.load_split("train", tmp_path)


def test_env_var_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_EDGE_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError, match="MNIST_EDGE_DATA"):
        data.load_split("test")


def test_offline_download_names_files_and_fix(monkeypatch):
    monkeypatch.delenv("MNIST_EDGE_DATA", raising=False)

    def offline(url):
        raise OSError("network is unreachable")

    monkeypatch.setattr(data, "_fetch", offline)
    with pytest.raises(DataNotFoundError) as e:
        data.load_split("train")
    text = str(e.value)
    assert "train-images-idx3-ubyte.gz" in text and "--data DIR" in text and "MNIST_EDGE_DATA" in text


def test_download_is_verified_and_cached(monkeypatch):
    """The mirror's bytes are checked against MNIST's SHA-256 before they are kept."""
    monkeypatch.delenv("MNIST_EDGE_DATA", raising=False)
    served = []
    origin = data.BUNDLED_DIR

    def fake_fetch(url):
        name = url.rsplit("/", 1)[-1]
        served.append(url)
        if "cvdf" in url:  # first mirror serves garbage
            return gzip.compress(b"not mnist")
        return (origin / name).read_bytes()

    monkeypatch.setattr(data, "_fetch", fake_fetch)
    monkeypatch.setattr(data, "BUNDLED_DIR", data.cache_dir() / "nowhere")
    images, labels = data.load_split("test")
    assert len(images) == 10000
    assert (data.cache_dir() / "t10k-images-idx3-ubyte.gz").is_file()
    assert not list(data.cache_dir().glob(".*"))  # no temp files left
    served.clear()
    data.load_split("test")
    assert served == []  # second time from the cache


def test_lying_headers_cost_only_what_is_there(tmp_path):
    """A small .gz whose header claims a million images is refused at the header; one that
    claims 70,000 but holds 100 costs memory for the 100, not the claim."""
    import gzip
    import struct
    import tracemalloc

    from mnist_edge.device.data import idx as reader

    huge = tmp_path / "huge-idx3-ubyte.gz"
    huge.write_bytes(gzip.compress(struct.pack(">IIII", 2051, 1_000_000, 28, 28) + bytes(784 * 10)))
    with pytest.raises(BadDataError, match="more than the 70000 allowed"):
        reader.read_images(huge)
    short = tmp_path / "short-idx3-ubyte.gz"
    short.write_bytes(gzip.compress(struct.pack(">IIII", 2051, 70_000, 28, 28) + bytes(784 * 100)))
    tracemalloc.start()
    with pytest.raises(BadDataError, match="truncated"):
        reader.read_images(short)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 5_000_000, peak  # the claim would be 55 MB
