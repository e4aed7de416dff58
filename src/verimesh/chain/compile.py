"""Compile the package's Vyper contracts offline and cache the artifacts.

Why a cache: compiling Token, Registry and JobMarket takes seconds, and every process that
talks to the chain (node, SDK, tests) needs their ABI. Artifacts are keyed by the sha256 of
every ``.vy`` source and ``.vyi`` interface in the folder plus the vyper version, so editing any source, including
an imported module such as ``merkle.vy``, makes the next call rebuild; nothing is ever stale.

Files whose name starts with an upper-case letter are contracts (``Token.vy``); lower-case
files are modules imported by contracts (``merkle.vy``) and are not deployed on their own.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from pathlib import Path

import vyper
from pydantic import BaseModel, ConfigDict
from vyper.compiler import compile_from_file_input
from vyper.compiler.input_bundle import FilesystemInputBundle
from vyper.exceptions import VyperException

from verimesh.chain.errors import CompileError
from verimesh.paths import artifact_cache_dir

CONTRACTS_DIR = Path(__file__).parent / "contracts"


class Artifact(BaseModel):
    """What a client needs to deploy and talk to one contract."""

    model_config = ConfigDict(ser_json_bytes="hex", val_json_bytes="hex")

    name: str
    abi: list[dict]
    bytecode: bytes  # init code, constructor arguments not included


class ArtifactSet(BaseModel):
    """All contracts of one source folder, compiled by one vyper version."""

    vyper_version: str
    sources_sha256: str
    contracts: dict[str, Artifact]

    def __getitem__(self, name: str) -> Artifact:
        try:
            return self.contracts[name]
        except KeyError:
            known = ", ".join(sorted(self.contracts)) or "none"
            raise CompileError(f"no compiled contract named {name!r} (compiled: {known})") from None


def default_cache_dir() -> Path:
    return artifact_cache_dir()


def contract_names(contracts_dir: Path = CONTRACTS_DIR) -> list[str]:
    """Deployable contracts in ``contracts_dir`` (upper-case file names)."""
    return sorted(p.stem for p in contracts_dir.glob("*.vy") if p.stem[:1].isupper())


def sources_digest(contracts_dir: Path = CONTRACTS_DIR) -> str:
    """sha256 over every source's name and bytes, and the compiler version."""
    h = hashlib.sha256(f"vyper {vyper.__version__}\n".encode())
    sources = (p for p in contracts_dir.rglob("*") if p.suffix in (".vy", ".vyi"))
    for path in sorted(sources):
        rel = path.relative_to(contracts_dir).as_posix().encode()
        data = path.read_bytes()
        h.update(len(rel).to_bytes(4, "big") + rel + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def compile_contract(path: Path, search_dir: Path) -> Artifact:
    """Compile one contract; ``import x`` resolves against ``search_dir``."""
    bundle = FilesystemInputBundle([search_dir])
    try:
        source = bundle.load_file(path)
        out = compile_from_file_input(
            source, input_bundle=bundle, output_formats=["abi", "bytecode"]
        )
    except VyperException as exc:
        raise CompileError(
            f"{path.name} does not compile with vyper {vyper.__version__}:\n{exc}"
        ) from exc
    return Artifact(name=path.stem, abi=out["abi"], bytecode=bytes.fromhex(out["bytecode"][2:]))


def load_artifacts(
    contracts_dir: Path = CONTRACTS_DIR,
    cache_dir: Path | None = None,
    names: list[str] | None = None,
) -> ArtifactSet:
    """Compiled artifacts of ``names`` (default: every contract), compiling only what the
    cache for the current sources does not hold yet."""
    contracts_dir = Path(contracts_dir)
    available = contract_names(contracts_dir)
    wanted = available if names is None else list(names)
    if not wanted:
        raise CompileError(f"no contracts (upper-case *.vy files) in {contracts_dir}")
    missing = [n for n in wanted if n not in available]
    if missing:
        raise CompileError(
            f"no source for {', '.join(missing)} in {contracts_dir} (found: {', '.join(available) or 'none'})"
        )
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    digest = sources_digest(contracts_dir)
    cache_file = cache_dir / f"{digest}.json"
    compiled = _read_set(cache_file, digest).contracts
    todo = [n for n in wanted if n not in compiled]
    if todo:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Processes sharing the cache (test workers, a demo's nodes started at once) split
        # the work: each compiles the contracts nobody else is compiling, then waits for
        # the others' (a lock is released when its holder exits, so a crash cannot wedge it).
        busy = [n for n in todo if not _compile_once(contracts_dir, cache_dir, digest, n, block=False)]
        for name in busy:
            _compile_once(contracts_dir, cache_dir, digest, name, block=True)
        compiled = _read_set(cache_file, digest).contracts
    return ArtifactSet(
        vyper_version=vyper.__version__,
        sources_sha256=digest,
        contracts={n: compiled[n] for n in wanted},
    )


def _read_set(cache_file: Path, digest: str) -> ArtifactSet:
    """The cached set; a missing, truncated or foreign file reads as empty (it is rebuilt)."""
    with contextlib.suppress(OSError, ValueError):
        cached = ArtifactSet.model_validate_json(cache_file.read_bytes())
        if cached.sources_sha256 == digest and cached.vyper_version == vyper.__version__:
            return cached
    return ArtifactSet(vyper_version=vyper.__version__, sources_sha256=digest, contracts={})


def _compile_once(contracts_dir: Path, cache_dir: Path, digest: str, name: str, block: bool) -> bool:
    """Compiles ``name`` into the cache unless it is there by the time its lock is held.
    False: another process holds the lock (only when ``block`` is False)."""
    with open(cache_dir / f"{digest}.{name}.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        cache_file = cache_dir / f"{digest}.json"
        if name in _read_set(cache_file, digest).contracts:
            return True
        artifact = compile_contract(contracts_dir / f"{name}.vy", contracts_dir)
        with open(cache_dir / f"{digest}.lock", "a") as set_lock:  # read-merge-write of the set
            fcntl.flock(set_lock, fcntl.LOCK_EX)
            cached = _read_set(cache_file, digest)
            cached.contracts[name] = artifact
            _write_atomically(cache_file, cached.model_dump_json().encode())
    return True


def _write_atomically(path: Path, data: bytes) -> None:
    """Parallel test workers may compile at once; readers must never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
