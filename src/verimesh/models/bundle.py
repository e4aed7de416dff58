"""Canonical model bundle: the exact bytes whose Merkle root is a model's id.

A bundle is a safetensors file of integer tensors (int8 weights, int32 biases, int16/int32
tables) plus ONE metadata entry, ``verimesh_config``: the model's config (architecture,
shapes, quantisation parameters, tokenizer JSON) as JSON with sorted keys and no spaces.

Why safetensors: any tool can open the weights, the header is plain JSON, and the layout is
fixed by the format (tensors sorted by dtype alignment then name), so the same tensors and
config always give the same bytes. Why only integer tensors: everything a node computes from
a bundle must be bit-identical on every machine; floats in the committed bytes would invite
float arithmetic.

``model_root = blob_root(bundle bytes)``; ``ModelBundle.from_bytes(data, expected_root)``
refuses bytes that do not hash to the root the caller asked for.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load as safetensors_load
from safetensors.numpy import save as safetensors_save

from verimesh.crypto.merkle import blob_root

CONFIG_KEY = "verimesh_config"
# Integer dtypes only (see module docstring). uint8 carries byte tables (e.g. vocab bytes).
ALLOWED_DTYPES = frozenset({"int8", "int16", "int32", "int64", "uint8"})
# A safetensors header larger than this is certainly not ours (MiniLM's is ~0.5 MiB, the
# tokenizer JSON included); refusing it early keeps a corrupt length field from eating RAM.
MAX_HEADER_BYTES = 64 * 1024 * 1024


class BundleError(ValueError):
    """Bytes or tensors that do not form a valid verimesh model bundle."""


def canonical_config_json(config: dict[str, Any]) -> str:
    """The one JSON text of a config: sorted keys, compact separators, UTF-8 as is."""
    try:
        return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"model config is not JSON-serialisable: {exc}") from exc


def root_hex(root: bytes) -> str:
    return "0x" + root.hex()


def parse_root(text: str) -> bytes:
    """Parse a 0x-prefixed (or bare) 64-hex-digit model root; raise BundleError otherwise."""
    body = text.lower().removeprefix("0x")
    if len(body) != 64:
        raise BundleError(f"a model root has 64 hex digits, got {len(body)} in {text!r}")
    try:
        return bytes.fromhex(body)
    except ValueError as exc:
        raise BundleError(f"model root {text!r} is not hexadecimal") from exc


@dataclass(frozen=True)
class ModelBundle:
    """A model as config + named integer tensors, serialisable to canonical bytes."""

    config: dict[str, Any]
    tensors: dict[str, np.ndarray] = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.config.get("architecture"), str):
            raise BundleError("model config needs a string 'architecture' field (e.g. 'bert')")
        canonical_config_json(self.config)
        for name, arr in self.tensors.items():
            if not isinstance(arr, np.ndarray):
                raise BundleError(f"tensor {name!r} is {type(arr).__name__}, not a numpy array")
            if arr.dtype.name not in ALLOWED_DTYPES:
                raise BundleError(
                    f"tensor {name!r} has dtype {arr.dtype.name}; bundles hold only "
                    f"{sorted(ALLOWED_DTYPES)} (quantise floats before bundling)"
                )

    @property
    def architecture(self) -> str:
        return self.config["architecture"]

    def tensor(self, name: str) -> np.ndarray:
        try:
            return self.tensors[name]
        except KeyError:
            raise BundleError(
                f"model bundle ({self.architecture}) has no tensor {name!r}"
            ) from None

    def to_bytes(self) -> bytes:
        """Canonical bytes (see module docstring)."""
        # not np.ascontiguousarray: it turns 0-d scalars (requant multipliers) into shape (1,)
        tensors = {k: v if v.flags.c_contiguous else v.copy() for k, v in self.tensors.items()}
        return safetensors_save(tensors, metadata={CONFIG_KEY: canonical_config_json(self.config)})

    def root(self) -> bytes:
        return blob_root(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes, expected_root: bytes | None = None) -> ModelBundle:
        """Parse canonical bytes; with ``expected_root``, first check they hash to it."""
        if expected_root is not None:
            actual = blob_root(data)
            if actual != expected_root:
                raise BundleError(
                    f"model bytes hash to {root_hex(actual)}, expected {root_hex(expected_root)}: "
                    "the file is corrupt or was replaced; re-import the model"
                )
        header = _read_header(data)
        meta = header.get("__metadata__") or {}
        if CONFIG_KEY not in meta:
            raise BundleError(
                f"safetensors file has no '{CONFIG_KEY}' metadata: it is not a verimesh bundle "
                "(import raw Hugging Face weights with `verimesh models import PATH`)"
            )
        try:
            config = json.loads(meta[CONFIG_KEY])
        except json.JSONDecodeError as exc:
            raise BundleError(f"bundle config is not valid JSON: {exc}") from exc
        if not isinstance(config, dict):
            raise BundleError("bundle config must be a JSON object")
        try:
            tensors = safetensors_load(data)
        except Exception as exc:  # the safetensors binding raises its own error types
            raise BundleError(f"bundle tensors cannot be read: {exc}") from exc
        return cls(config=config, tensors=tensors)


def read_config(path: Path) -> dict[str, Any]:
    """A bundle file's config, reading only its header (cheap: no tensor data, no hashing)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) == 8:
            (size,) = struct.unpack("<Q", head)
            head += f.read(min(size, MAX_HEADER_BYTES))
    meta = _read_header(head).get("__metadata__") or {}
    try:
        config = json.loads(meta[CONFIG_KEY])
    except (KeyError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} has no valid '{CONFIG_KEY}' metadata") from exc
    if not isinstance(config, dict):
        raise BundleError(f"{path}: bundle config must be a JSON object")
    return config


def _read_header(data: bytes) -> dict[str, Any]:
    """The safetensors JSON header, with checks that give a useful message on truncation."""
    if len(data) < 8:
        raise BundleError(f"model file is truncated: {len(data)} bytes, no safetensors header")
    (size,) = struct.unpack("<Q", data[:8])
    if size > MAX_HEADER_BYTES or 8 + size > len(data):
        raise BundleError(
            f"model file is truncated or corrupt: header claims {size} bytes, "
            f"file has {len(data)}"
        )
    try:
        header = json.loads(data[8 : 8 + size])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"model file header is not valid JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise BundleError("model file header must be a JSON object")
    return header
