"""Local model store: names, roots, atomic writes, verification on load."""

from __future__ import annotations

import numpy as np
import pytest

from verimesh.models.bundle import BundleError, ModelBundle, root_hex
from verimesh.models.store import ModelNotFoundError, ModelStore


def _bundle(seed: int = 0) -> ModelBundle:
    rng = np.random.default_rng(seed)
    return ModelBundle(
        {"architecture": "test", "seed": seed},
        {"w": rng.integers(-127, 128, size=(8, 8), dtype=np.int8)},
    )


def _files(store: ModelStore) -> list[str]:
    return sorted(p.name for p in store.directory.iterdir() if p.name != ".lock")


def test_put_then_load_by_name_and_root(tmp_path) -> None:
    store = ModelStore(tmp_path / "models")
    root = store.put(_bundle(), name="demo")
    assert root == _bundle().root()
    for key in ("demo", root_hex(root), root.hex()):
        got_root, bundle = store.load(key)
        assert got_root == root
        np.testing.assert_array_equal(bundle.tensors["w"], _bundle().tensors["w"])
    [entry] = store.list()
    assert entry.names == ("demo",) and entry.architecture == "test" and entry.root == root


def test_default_directory_follows_verimesh_home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VERIMESH_HOME", str(tmp_path / "home"))
    assert ModelStore().directory == tmp_path / "home" / "models"


def test_unknown_name_and_root_say_what_to_do(tmp_path) -> None:
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ModelNotFoundError, match="verimesh models"):
        store.resolve("nope")
    with pytest.raises(ModelNotFoundError, match="verimesh models import"):
        store.resolve("0x" + "ab" * 32)


def test_renaming_points_at_the_new_model(tmp_path) -> None:
    store = ModelStore(tmp_path / "models")
    first = store.put(_bundle(0), name="m")
    second = store.put(_bundle(1), name="m")
    assert first != second and store.resolve("m") == second
    store.name("m", first)
    assert store.resolve("m") == first


def test_file_changed_on_disk_is_refused(tmp_path) -> None:
    store = ModelStore(tmp_path / "models")
    root = store.put(_bundle(), name="m")
    path = store.path_for(root)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="corrupt or was replaced"):
        store.load("m")


def test_reimport_repairs_a_damaged_file(tmp_path) -> None:
    store = ModelStore(tmp_path / "models")
    root = store.put(_bundle(), name="m")
    store.path_for(root).write_bytes(b"damaged")
    with pytest.raises(BundleError):
        store.load("m")
    assert store.put(_bundle(), name="m") == root
    assert store.load("m")[0] == root


def test_bad_bytes_leave_nothing_in_store(tmp_path) -> None:
    store = ModelStore(tmp_path / "models")
    data = _bundle().to_bytes()
    for bad in (data[: len(data) // 2], b"", b"not a model at all"):
        with pytest.raises(BundleError):
            store.put_bytes(bad, name="broken")
    assert not store.directory.exists() or _files(store) == []


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch) -> None:
    store = ModelStore(tmp_path / "models")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("verimesh.models.store.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        store.put(_bundle(), name="m")
    assert _files(store) == []


def test_invalid_names_are_refused(tmp_path) -> None:
    store = ModelStore(tmp_path / "models")
    for name in ("", "Big", "a/b", "0x" + "ab" * 32, "-x"):
        with pytest.raises(ValueError, match="not valid"):
            store.put(_bundle(), name=name)
