"""Canonical bundle bytes: deterministic, root-checked, integer-only, clear on corruption."""

from __future__ import annotations

import numpy as np
import pytest

from verimesh.crypto.merkle import blob_root
from verimesh.models.bundle import BundleError, ModelBundle, parse_root, read_config, root_hex


def _bundle(order: int = 1) -> ModelBundle:
    tensors = {
        "w": np.arange(-6, 6, dtype=np.int8).reshape(3, 4),
        "b": np.array([1, -2, 3], dtype=np.int32),
        "table": np.arange(10, dtype=np.int16),
    }
    config = {"architecture": "test", "hidden": 4, "tokenizer": {"x": [1, 2]}}
    if order < 0:
        tensors = dict(reversed(list(tensors.items())))
        config = dict(reversed(list(config.items())))
    return ModelBundle(config=config, tensors=tensors)


def test_bytes_do_not_depend_on_insertion_order() -> None:
    assert _bundle(1).to_bytes() == _bundle(-1).to_bytes()
    assert _bundle(1).root() == blob_root(_bundle(-1).to_bytes())


def test_round_trip_verifies_root() -> None:
    bundle = _bundle()
    data = bundle.to_bytes()
    loaded = ModelBundle.from_bytes(data, expected_root=bundle.root())
    assert loaded.config == bundle.config
    assert set(loaded.tensors) == set(bundle.tensors)
    for name, arr in bundle.tensors.items():
        assert loaded.tensors[name].dtype == arr.dtype
        np.testing.assert_array_equal(loaded.tensors[name], arr)


def test_changed_config_changes_root() -> None:
    other = ModelBundle({**_bundle().config, "hidden": 5}, _bundle().tensors)
    assert other.root() != _bundle().root()


def test_wrong_root_is_refused() -> None:
    data = bytearray(_bundle().to_bytes())
    root = blob_root(bytes(data))
    data[-1] ^= 1
    with pytest.raises(BundleError, match="corrupt or was replaced"):
        ModelBundle.from_bytes(bytes(data), expected_root=root)


@pytest.mark.parametrize("cut", [0, 5, 40, -1])
def test_truncated_bytes_give_clear_error(cut: int) -> None:
    data = _bundle().to_bytes()
    with pytest.raises(BundleError, match=r"truncated|corrupt|cannot be read"):
        ModelBundle.from_bytes(data[:cut])


def test_float_tensors_are_refused() -> None:
    with pytest.raises(BundleError, match="quantise floats"):
        ModelBundle({"architecture": "t"}, {"w": np.zeros(3, dtype=np.float32)})


def test_architecture_is_required() -> None:
    with pytest.raises(BundleError, match="architecture"):
        ModelBundle({"hidden": 3}, {})


def test_plain_safetensors_is_not_a_bundle() -> None:
    from safetensors.numpy import save

    with pytest.raises(BundleError, match="not a verimesh bundle"):
        ModelBundle.from_bytes(save({"w": np.zeros(2, dtype=np.int8)}))


def test_read_config_reads_header_only(tmp_path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(_bundle().to_bytes())
    assert read_config(path) == _bundle().config


def test_root_text_round_trip() -> None:
    root = _bundle().root()
    assert parse_root(root_hex(root)) == root
    with pytest.raises(BundleError, match="64 hex digits"):
        parse_root("0x1234")


def test_scalars_keep_their_shape() -> None:
    bundle = ModelBundle({"architecture": "t"}, {"m": np.array(7, dtype=np.int32)})
    loaded = ModelBundle.from_bytes(bundle.to_bytes())
    assert loaded.tensors["m"].shape == () and int(loaded.tensors["m"]) == 7
