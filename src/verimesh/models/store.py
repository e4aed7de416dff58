"""Local model store: canonical bundles under ``$VERIMESH_HOME/models``, found by root or name.

Layout::

    $VERIMESH_HOME/models/<root hex>.safetensors   one file per model, named by its id
    $VERIMESH_HOME/models/index.json               {"names": {"minilm": "0x<root hex>"}}

Every write goes to a temporary file in the same folder and is renamed into place, so a
crash or an error at any point leaves either the old state or the new one, never a partial
model. A model file is re-hashed when it is loaded: a file changed on disk is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verimesh.crypto.merkle import blob_root
from verimesh.models.bundle import (
    BundleError,
    ModelBundle,
    parse_root,
    read_config,
    root_hex,
)
from verimesh.paths import verimesh_home

INDEX_FILE = "index.json"
SUFFIX = ".safetensors"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_ROOT_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


class ModelNotFoundError(LookupError):
    """No model with that name or root in the local store."""


def is_root_text(text: str) -> bool:
    return bool(_ROOT_RE.match(text))


def check_name(name: str) -> str:
    if not _NAME_RE.match(name) or is_root_text(name):
        raise ValueError(
            f"model name {name!r} is not valid: use 1-64 lowercase letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (e.g. 'minilm')"
        )
    return name


@dataclass(frozen=True)
class StoredModel:
    """One model in the store, as `verimesh models list` shows it."""

    root: bytes
    names: tuple[str, ...]
    architecture: str
    size: int
    path: Path

    def to_json(self) -> dict[str, Any]:
        return {
            "root": root_hex(self.root),
            "names": list(self.names),
            "architecture": self.architecture,
            "size": self.size,
            "path": str(self.path),
        }


class ModelStore:
    """Models on local disk, addressed by root; friendly names are an index on top."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory if directory is not None else verimesh_home() / "models"

    # -- paths -------------------------------------------------------------------------
    def path_for(self, root: bytes) -> Path:
        return self.directory / f"{root.hex()}{SUFFIX}"

    def has(self, root: bytes) -> bool:
        return self.path_for(root).is_file()

    def _intact(self, root: bytes) -> bool:
        path = self.path_for(root)
        return path.is_file() and blob_root(path.read_bytes()) == root

    # -- writing -----------------------------------------------------------------------
    def put(self, bundle: ModelBundle, name: str | None = None) -> bytes:
        """Store ``bundle`` (atomically) and optionally name it; return its root."""
        return self.put_bytes(bundle.to_bytes(), name)

    def put_bytes(self, data: bytes, name: str | None = None) -> bytes:
        """Store canonical bundle bytes after checking they parse; return their root."""
        if name is not None:
            check_name(name)
        ModelBundle.from_bytes(data)  # refuse anything that is not a loadable bundle
        root = blob_root(data)
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._locked():
            if not self._intact(root):  # absent, or damaged on disk: (re)write it
                _atomic_write(self.path_for(root), data)
            if name is not None:
                index = self._read_index()
                index["names"][name] = root_hex(root)
                _atomic_write(self.directory / INDEX_FILE, _index_bytes(index))
        return root

    def name(self, name: str, root: bytes) -> None:
        """Point ``name`` at a model already in the store."""
        check_name(name)
        if not self.has(root):
            raise ModelNotFoundError(f"no model {root_hex(root)} in {self.directory}")
        with self._locked():
            index = self._read_index()
            index["names"][name] = root_hex(root)
            _atomic_write(self.directory / INDEX_FILE, _index_bytes(index))

    # -- reading -----------------------------------------------------------------------
    def resolve(self, name_or_root: str) -> bytes:
        """Root of a stored model given its name or its 0x root; ModelNotFoundError if absent."""
        if is_root_text(name_or_root):
            root = parse_root(name_or_root)
            if self.has(root):
                return root
            raise ModelNotFoundError(
                f"no model {root_hex(root)} in {self.directory}; import it with "
                "`verimesh models import PATH`"
            )
        root_text = self._read_index()["names"].get(name_or_root)
        if root_text is None or not self.has(parse_root(root_text)):
            raise ModelNotFoundError(
                f"no model named {name_or_root!r} in {self.directory}; "
                "see `verimesh models list`, or import it with `verimesh models import`"
            )
        return parse_root(root_text)

    def load(self, name_or_root: str) -> tuple[bytes, ModelBundle]:
        """Read, verify against its root, and parse a stored model."""
        root = self.resolve(name_or_root)
        data = self.path_for(root).read_bytes()
        return root, ModelBundle.from_bytes(data, expected_root=root)

    def list(self) -> list[StoredModel]:
        if not self.directory.is_dir():
            return []
        names: dict[str, list[str]] = {}
        for name, root_text in sorted(self._read_index()["names"].items()):
            names.setdefault(root_text, []).append(name)
        models = []
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            try:
                root = bytes.fromhex(path.name.removesuffix(SUFFIX))
            except ValueError:
                continue  # not a model file of ours
            try:
                architecture = str(read_config(path)["architecture"])
            except (KeyError, BundleError, OSError):
                architecture = "unreadable"
            models.append(
                StoredModel(
                    root=root,
                    names=tuple(names.get(root_hex(root), [])),
                    architecture=architecture,
                    size=path.stat().st_size,
                    path=path,
                )
            )
        return models

    # -- index -------------------------------------------------------------------------
    def _read_index(self) -> dict[str, Any]:
        path = self.directory / INDEX_FILE
        if not path.is_file():
            return {"names": {}}
        try:
            index = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise BundleError(
                f"model index {path} is not valid JSON ({exc}); fix or delete it "
                "(models stay on disk, only names are lost)"
            ) from exc
        if not isinstance(index, dict) or not isinstance(index.get("names"), dict):
            raise BundleError(f"model index {path} must be {{\"names\": {{...}}}}")
        return index

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise writers (two imports at once must not lose a name)."""
        with open(self.directory / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _index_bytes(index: dict[str, Any]) -> bytes:
    return (json.dumps(index, indent=2, sort_keys=True) + "\n").encode()


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file + fsync + rename: readers see all of ``data`` or nothing."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
