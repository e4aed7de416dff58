"""The local blob store: complete blobs, resumable partial fetches, a size cap with LRU eviction.

Layout under ``$VERIMESH_HOME/blobs`` (``~/.verimesh/blobs`` by default)::

    index.sqlite          metadata (WAL): one row per blob, verified chunks of partial blobs
    complete/<root hex>   bytes of every complete blob
    staging/<root hex>    partial blobs being fetched, chunks written at their offsets
    quarantine/...        files that failed re-hashing on read; never served again
    tmp/<pid>-<uuid>      puts in progress (removed at open once their process is gone)

Why it is shaped this way:
- A blob enters ``complete/`` only by an atomic ``os.replace`` after its whole root was
  recomputed from the bytes on disk, so a reader never sees a half-written blob.
- A partial blob keeps, per verified chunk, the chunk's leaf hash in SQLite, committed after
  the bytes were written. A fetch killed at any point resumes from that record; a chunk whose
  bytes were lost anyway is caught when the root is recomputed and simply fetched again.
- Reads re-hash each chunk against the stored tree, so a file damaged on disk is detected
  the first time it is read, moved to ``quarantine/``, and never served.
- Eviction only removes complete, unpinned blobs, oldest access first; partial blobs keep
  the room reserved for their full size until they complete or are deleted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from verimesh.crypto.merkle import (
    CHUNK_SIZE,
    HASH_SIZE,
    MerkleTree,
    leaf_hash,
)
from verimesh.paths import verimesh_home
from verimesh.procs import pid_alive
from verimesh.store.errors import (
    BadChunkError,
    BlobTooLargeError,
    CorruptBlobError,
    StoreError,
    StoreFullError,
    UnknownBlobError,
)
from verimesh.store.ids import Root, format_root, parse_root
from verimesh.store.messages import BlobInfo, Chunk, ChunkProof, check_chunk

log = logging.getLogger(__name__)

_TREE_CACHE_SIZE = 32  # trees of recently served blobs; one tree of a 4 GiB blob is ~1 MiB
_COPY_BUFFER = 1 << 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blobs (
    root        BLOB PRIMARY KEY,
    state       TEXT NOT NULL CHECK (state IN ('complete', 'staging')),
    size        INTEGER NOT NULL,
    chunk_count INTEGER NOT NULL,
    pinned      INTEGER NOT NULL DEFAULT 0,
    last_access REAL NOT NULL,
    leaves      BLOB            -- concatenated leaf hashes of a complete blob
);
CREATE TABLE IF NOT EXISTS staged_chunks (
    root BLOB NOT NULL,
    idx  INTEGER NOT NULL,
    leaf BLOB NOT NULL,         -- leaf hash, verified against the root before it was written
    PRIMARY KEY (root, idx)
);
"""


def default_blob_dir() -> Path:
    """``$VERIMESH_HOME/blobs``; ``VERIMESH_HOME`` defaults to ``~/.verimesh``."""
    return verimesh_home() / "blobs"


@dataclass(frozen=True)
class BlobRecord:
    """A row of the store's index, as ``BlobStore.blobs()`` lists it."""

    root: str
    state: str  # "complete" or "staging"
    size: int
    chunk_count: int
    pinned: bool
    last_access: float


@dataclass(frozen=True)
class StagingStatus:
    """A partial blob: its proven size and the chunks already verified and written."""

    root: str
    size: int
    chunk_count: int
    verified: frozenset[int]

    @property
    def missing(self) -> list[int]:
        return [i for i in range(self.chunk_count) if i not in self.verified]


class BlobStore:
    """Content-addressed blobs on local disk. Thread-safe; one instance per directory."""

    def __init__(
        self,
        directory: Path | str | None = None,
        *,
        cap_bytes: int | None = None,
        chunk_size: int = CHUNK_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        if cap_bytes is not None and cap_bytes < 0:
            raise ValueError(f"cap_bytes must be >= 0 or None (no cap), got {cap_bytes}")
        self.directory = Path(directory) if directory is not None else default_blob_dir()
        self.cap_bytes = cap_bytes
        self.chunk_size = chunk_size
        self._clock = clock
        self._lock = threading.RLock()
        self._in_tx = False
        self._unlink_on_commit: list[Path] = []
        self._trees: OrderedDict[bytes, MerkleTree] = OrderedDict()
        for sub in ("complete", "staging", "quarantine", "tmp"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            self.directory / "index.sqlite", isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(_SCHEMA)
        self._check_chunk_size()
        self._recover()
        try:
            self._make_room(0)  # the cap may have been lowered since the last run
        except StoreFullError as exc:
            log.warning("store %s is over its cap: %s", self.directory, exc)

    # ----------------------------------------------------------------- housekeeping

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> BlobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; a nested call joins the outer one.

        Taken up front (``BEGIN IMMEDIATE``) so concurrent processes queue instead of
        deadlocking. Every change that touches both files and index (rename + insert,
        delete + unlink, recovery's check + repair) runs inside one, so another process
        opening the same store never sees one half of it.
        """
        with self._lock:
            if self._in_tx:
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._in_tx = True
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                self._unlink_on_commit.clear()
                raise
            else:
                self._db.execute("COMMIT")
                # Files go only once their rows are gone for good: a rolled-back eviction
                # must not leave rows that point at deleted files.
                for path in self._unlink_on_commit:
                    path.unlink(missing_ok=True)
                self._unlink_on_commit.clear()
            finally:
                self._in_tx = False

    def _check_chunk_size(self) -> None:
        with self._tx() as db:
            row = db.execute("SELECT value FROM settings WHERE key = 'chunk_size'").fetchone()
            if row is None:
                db.execute("INSERT INTO settings VALUES ('chunk_size', ?)", (str(self.chunk_size),))
            elif int(row[0]) != self.chunk_size:
                raise StoreError(
                    f"store {self.directory} holds blobs cut into {row[0]}-byte chunks; open it "
                    f"with chunk_size={row[0]} or use another directory"
                )

    def _complete_path(self, root: bytes) -> Path:
        return self.directory / "complete" / root.hex()

    def _staging_path(self, root: bytes) -> Path:
        return self.directory / "staging" / root.hex()

    def _recover(self) -> None:
        """Bring disk and index back in line after a crash (every step is idempotent)."""
        with self._tx():
            self._recover_in_tx()

    def _recover_in_tx(self) -> None:
        for tmp in (self.directory / "tmp").iterdir():
            pid = tmp.name.split("-", 1)[0]
            if not (pid.isdigit() and pid_alive(int(pid))):
                tmp.unlink(missing_ok=True)
        rows = self._db.execute("SELECT root, state FROM blobs").fetchall()
        known = {bytes(r): s for r, s in rows}
        for root, state in known.items():
            if state == "complete" and not self._complete_path(root).exists():
                log.warning("blob %s: data file is gone, forgetting it", format_root(root))
                self.delete(root)
            elif (
                state == "staging"
                and not self._staging_path(root).exists()
                # killed between the rename and the index update of try_complete()?
                and not (self._complete_path(root).exists() and self.try_complete(root) == [])
            ):
                self.delete(root)
        for path in (self.directory / "complete").iterdir():
            root = _root_from_name(path.name)
            if root is None:
                path.unlink(missing_ok=True)
            elif root not in known:
                # Killed between the rename and the commit of a put (the caller never got
                # the root and will put again), or between a delete's commit and its unlink.
                path.unlink(missing_ok=True)
        for path in (self.directory / "staging").iterdir():
            root = _root_from_name(path.name)
            if root is None or known.get(root) != "staging":
                path.unlink(missing_ok=True)

    # ----------------------------------------------------------------- queries

    def has(self, root: Root) -> bool:
        """True iff the complete blob is held (partial fetches do not count)."""
        return self._row(parse_root(root), "complete") is not None

    def info(self, root: Root) -> BlobInfo:
        r = parse_root(root)
        row = self._require(r)
        return BlobInfo(
            root=format_root(r), size=row[0], chunk_count=row[1], chunk_size=self.chunk_size
        )

    def blobs(self) -> list[BlobRecord]:
        """Every blob in the index, complete and partial, least recently used first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT root, state, size, chunk_count, pinned, last_access FROM blobs "
                "ORDER BY last_access, rowid"
            ).fetchall()
        return [BlobRecord(format_root(bytes(r)), s, n, c, bool(p), a) for r, s, n, c, p, a in rows]

    def usage(self) -> int:
        """Bytes counted against the cap: complete blobs plus the full size of partial ones."""
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(SUM(size), 0) FROM blobs").fetchone()[0])

    def _row(self, root: bytes, state: str) -> tuple | None:
        with self._lock:
            return self._db.execute(
                "SELECT size, chunk_count, pinned FROM blobs WHERE root = ? AND state = ?",
                (root, state),
            ).fetchone()

    def _leaves(self, root: bytes) -> bytes:
        """Concatenated leaf hashes of a complete blob (read only when needed: 32 B/chunk)."""
        with self._lock:
            row = self._db.execute("SELECT leaves FROM blobs WHERE root = ?", (root,)).fetchone()
        if row is None or row[0] is None:
            self._quarantine(root, "its Merkle tree is missing from the index")
        return bytes(row[0])

    def _require(self, root: bytes) -> tuple:
        row = self._row(root, "complete")
        if row is None:
            partial = self._row(root, "staging") is not None
            hint = " (a fetch of it is in progress)" if partial else ""
            raise UnknownBlobError(
                f"blob {format_root(root)} is not in the store{hint}; put it or fetch it from a peer"
            )
        return row

    def _touch(self, root: bytes) -> None:
        with self._tx() as db:
            db.execute("UPDATE blobs SET last_access = ? WHERE root = ?", (self._clock(), root))

    # ----------------------------------------------------------------- reading

    def _tree(self, root: bytes, row: tuple) -> MerkleTree:
        with self._lock:
            tree = self._trees.get(root)
            if tree is not None:
                self._trees.move_to_end(root)
                return tree
        leaves = self._leaves(root)
        tree = MerkleTree([leaves[i : i + HASH_SIZE] for i in range(0, len(leaves), HASH_SIZE)])
        if tree.root != root or tree.leaf_count != row[1]:
            self._quarantine(root, "its recorded Merkle tree does not match its root")
        with self._lock:
            self._trees[root] = tree
            while len(self._trees) > _TREE_CACHE_SIZE:
                self._trees.popitem(last=False)
        return tree

    def chunk(self, root: Root, index: int) -> Chunk:
        """Chunk ``index`` of a complete blob with its proof, re-hashed against the tree first."""
        r = parse_root(root)
        row = self._require(r)
        size, count = row[0], row[1]
        if not 0 <= index < count:
            raise IndexError(
                f"chunk index {index} is outside blob {format_root(r)} of {count} chunks (0..{count - 1})"
            )
        tree = self._tree(r, row)
        data = self._verified_chunk(r, tree, index, size)
        self._touch(r)
        return Chunk(data, ChunkProof.from_merkle(r, size, tree.proof(index)))

    def read_chunks(self, root: Root, start: int, count: int) -> Iterator[bytes]:
        """Chunks ``start`` to ``start + count - 1``, each re-hashed before it is yielded.

        Arguments are checked now (``IndexError``, ``UnknownBlobError``); a damaged chunk
        quarantines the blob and raises ``CorruptBlobError`` when the iteration reaches it.
        """
        r = parse_root(root)
        row = self._require(r)
        size, n = row[0], row[1]
        if not (start >= 0 and count >= 1 and start + count <= n):
            raise IndexError(
                f"chunks {start}..{start + count - 1} are outside blob {format_root(r)} of {n} "
                f"chunks (0..{n - 1})"
            )
        tree = self._tree(r, row)
        self._touch(r)
        return (self._verified_chunk(r, tree, i, size) for i in range(start, start + count))

    def leaves(self, root: Root) -> bytes:
        """The blob's Merkle leaves: one 32-byte leaf hash per chunk, concatenated.

        A fetcher checks them once against the root (``MerkleTree(leaves).root``) and can
        then verify any run of chunks by their leaf hashes, without a proof per chunk.
        """
        r = parse_root(root)
        tree = self._tree(r, self._require(r))
        return b"".join(tree.leaf(i) for i in range(tree.leaf_count))

    def _verified_chunk(self, root: bytes, tree: MerkleTree, index: int, size: int) -> bytes:
        data = self._read_chunk(root, index, size)
        if leaf_hash(data) != tree.leaf(index):
            self._quarantine(root, f"chunk {index} does not match its leaf hash")
        return data

    def get(self, root: Root) -> bytes:
        """All bytes of a complete blob, every chunk re-hashed before it is returned."""
        r = parse_root(root)
        row = self._require(r)
        path = self._complete_path(r)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self._quarantine(r, "its data file is missing")
        self._verify_bytes(r, row, data)
        self._touch(r)
        return data

    def get_path(self, root: Root, *, verify: bool = True) -> Path:
        """Path of a complete blob's file, for readers that stream or mmap it.

        The file is re-hashed first unless ``verify=False`` (the caller then owns that risk).
        Do not write to it: the store owns the file and may evict it when it is not pinned.
        """
        r = parse_root(root)
        row = self._require(r)
        path = self._complete_path(r)
        if verify:
            try:
                leaves, size = _hash_file(path, self.chunk_size)
            except FileNotFoundError:
                self._quarantine(r, "its data file is missing")
            self._check_leaves(r, row, leaves, size)
        self._touch(r)
        return path

    def _read_chunk(self, root: bytes, index: int, size: int) -> bytes:
        want = min(self.chunk_size, size - index * self.chunk_size)
        try:
            with open(self._complete_path(root), "rb") as f:
                data = os.pread(f.fileno(), want, index * self.chunk_size)
        except FileNotFoundError:
            self._quarantine(root, "its data file is missing")
        if len(data) != want:
            self._quarantine(root, f"chunk {index} is truncated ({len(data)} of {want} bytes)")
        return data

    def _verify_bytes(self, root: bytes, row: tuple, data: bytes) -> None:
        cs = self.chunk_size
        view = memoryview(data)
        leaves = [leaf_hash(view[i : i + cs]) for i in range(0, len(data), cs)]
        self._check_leaves(root, row, leaves, len(data))

    def _check_leaves(self, root: bytes, row: tuple, leaves: list[bytes], size: int) -> None:
        if size != row[0]:
            self._quarantine(root, f"its file has {size} bytes, expected {row[0]}")
        recorded = self._leaves(root)
        for i, leaf in enumerate(leaves):
            if recorded[i * HASH_SIZE : (i + 1) * HASH_SIZE] != leaf:
                self._quarantine(root, f"chunk {i} does not match its leaf hash")

    def _quarantine(self, root: bytes, reason: str) -> None:
        """Move a damaged blob out of service and raise; the blob must be fetched again."""
        target = self.directory / "quarantine" / f"{root.hex()}-{time.time_ns()}"
        with self._tx():
            if self._row(root, "complete") is None:  # deleted or evicted while being read
                raise UnknownBlobError(
                    f"blob {format_root(root)} was removed from the store while it was being "
                    "read; pin blobs you are using, or fetch it again"
                )
            with contextlib.suppress(FileNotFoundError):
                os.replace(self._complete_path(root), target)
            self.delete(root)
        log.error("blob %s quarantined: %s", format_root(root), reason)
        raise CorruptBlobError(
            f"blob {format_root(root)} is corrupt on disk: {reason}. It was moved to {target} "
            "and will not be served; fetch it again from a peer"
        )

    # ----------------------------------------------------------------- writing

    def put(
        self, source: bytes | bytearray | memoryview | os.PathLike[str], *, pin: bool = False
    ) -> bytes:
        """Store bytes, or a file streamed chunk by chunk, and return the blob's root."""
        if isinstance(source, str):
            raise TypeError(
                "put() got a str: pass pathlib.Path(...) to store a file, or bytes to store data"
            )
        if isinstance(source, bytes | bytearray | memoryview):
            self._check_fits(memoryview(source).nbytes)
            tmp, leaves, size = self._write_tmp(_iter_memory(source, self.chunk_size))
        else:
            path = Path(source)
            self._check_fits(path.stat().st_size)  # fail fast; the size that counts is read below
            with open(path, "rb") as f:
                tmp, leaves, size = self._write_tmp(_iter_file(f, self.chunk_size))
        root = MerkleTree(leaves).root
        try:
            self._admit(root, tmp, leaves, size, pin)
        finally:
            tmp.unlink(missing_ok=True)
        return root

    def _write_tmp(self, chunks: Iterator[bytes]) -> tuple[Path, list[bytes], int]:
        """Copy ``chunks`` into a fresh file under ``tmp/``; return it, its leaves, its size."""
        tmp = self.directory / "tmp" / f"{os.getpid()}-{uuid.uuid4().hex}"
        leaves: list[bytes] = []
        size = 0
        try:
            with open(tmp, "wb") as f:
                for data in chunks:
                    leaves.append(leaf_hash(data))
                    size += f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, leaves, size

    def _admit(self, root: bytes, tmp: Path, leaves: list[bytes], size: int, pin: bool) -> None:
        with self._tx() as db:
            if self._row(root, "complete") is not None:
                db.execute(
                    "UPDATE blobs SET last_access = ?, pinned = MAX(pinned, ?) WHERE root = ?",
                    (self._clock(), int(pin), root),
                )
                return
            staged = self._row(root, "staging")
            self._make_room(0 if staged else size)
            os.replace(tmp, self._complete_path(root))
            _fsync_dir(self._complete_path(root).parent)
            db.execute("DELETE FROM staged_chunks WHERE root = ?", (root,))
            db.execute(
                "INSERT INTO blobs VALUES (?, 'complete', ?, ?, ?, ?, ?) ON CONFLICT(root) DO "
                "UPDATE SET state = 'complete', pinned = MAX(pinned, excluded.pinned), "
                "last_access = excluded.last_access, leaves = excluded.leaves",
                (root, size, len(leaves), int(pin), self._clock(), b"".join(leaves)),
            )
            if staged:
                self._unlink_on_commit.append(self._staging_path(root))

    def _check_fits(self, size: int) -> None:
        if self.cap_bytes is not None and size > self.cap_bytes:
            raise BlobTooLargeError(
                f"a blob of {size} bytes cannot fit in this store's cap of {self.cap_bytes} "
                f"bytes; raise the cap to at least {size} bytes"
            )

    def _make_room(self, needed: int) -> None:
        """Evict complete, unpinned blobs, least recently used first, until ``needed`` fits."""
        if self.cap_bytes is None:
            return
        self._check_fits(needed)
        with self._tx():
            free = self.cap_bytes - self.usage()
            if free >= needed:
                return
            victims = self._db.execute(
                "SELECT root, size FROM blobs WHERE state = 'complete' AND pinned = 0 "
                "ORDER BY last_access, rowid"
            ).fetchall()
            for root, size in victims:
                if free >= needed:
                    break
                self.delete(bytes(root))
                log.info("evicted blob %s (%d bytes)", format_root(bytes(root)), size)
                free += size
            if free < needed:
                pinned, staging = self._db.execute(
                    "SELECT COALESCE(SUM(CASE WHEN pinned = 1 AND state = 'complete' THEN size END), 0), "
                    "COALESCE(SUM(CASE WHEN state = 'staging' THEN size END), 0) FROM blobs"
                ).fetchone()
                raise StoreFullError(
                    f"need {needed} bytes but only {max(free, 0)} of the {self.cap_bytes}-byte cap "
                    f"can be freed: {pinned} bytes are pinned and {staging} bytes are being "
                    "fetched; unpin blobs, delete partial fetches, or raise the cap"
                )

    def pin(self, root: Root, pinned: bool = True) -> None:
        """Protect a blob (complete or being fetched) from eviction, or lift the protection."""
        r = parse_root(root)
        with self._tx() as db:
            cur = db.execute("UPDATE blobs SET pinned = ? WHERE root = ?", (int(pinned), r))
        if cur.rowcount == 0:
            raise UnknownBlobError(f"blob {format_root(r)} is not in the store; nothing to pin")

    def delete(self, root: Root) -> bool:
        """Remove a blob, complete or partial. Returns False if it was not there."""
        r = parse_root(root)
        with self._tx() as db:
            cur = db.execute("DELETE FROM blobs WHERE root = ?", (r,))
            db.execute("DELETE FROM staged_chunks WHERE root = ?", (r,))
            self._trees.pop(r, None)
            self._unlink_on_commit.extend([self._complete_path(r), self._staging_path(r)])
        return cur.rowcount > 0

    # ----------------------------------------------------------------- partial blobs

    def staging(self, root: Root) -> StagingStatus | None:
        """State of a partial fetch, or None if there is none (resume from here)."""
        r = parse_root(root)
        with self._lock:
            row = self._row(r, "staging")
            if row is None:
                return None
            done = self._db.execute("SELECT idx FROM staged_chunks WHERE root = ?", (r,)).fetchall()
        return StagingStatus(format_root(r), row[0], row[1], frozenset(i for (i,) in done))

    def begin_fetch(
        self, root: Root, last_chunk: bytes, proof: ChunkProof, *, pin: bool = False
    ) -> StagingStatus:
        """Open a partial blob from its verified LAST chunk.

        The last chunk's proof proves the chunk count (the root binds it) and its length
        proves the exact size, so the room reserved against the cap never rests on a peer's
        word. Returns the existing status if the fetch was already begun.
        """
        r = parse_root(root)
        check_chunk(r, last_chunk, proof, self.chunk_size)
        if proof.index != proof.chunk_count - 1:
            raise BadChunkError(
                f"begin_fetch needs the last chunk ({proof.chunk_count - 1}) of blob "
                f"{format_root(r)}, got chunk {proof.index}"
            )
        with self._tx() as db:
            existing = self.staging(r)  # another fetcher of the same blob got here first
            if existing is not None:
                return existing
            if self.has(r):
                raise StoreError(f"blob {format_root(r)} is already complete; nothing to fetch")
            self._make_room(proof.size)
            db.execute(
                "INSERT INTO blobs VALUES (?, 'staging', ?, ?, ?, ?, NULL)",
                (r, proof.size, proof.chunk_count, int(pin), self._clock()),
            )
            with open(self._staging_path(r), "wb") as f:
                f.truncate(proof.size)
        self.write_chunk(r, last_chunk, proof)
        status = self.staging(r)
        assert status is not None
        return status

    def write_chunk(self, root: Root, data: bytes, proof: ChunkProof) -> bool:
        """Verify a chunk against the root, then write it into the partial blob.

        Returns False if the blob is already complete (or was deleted while the chunk was
        written). Raises ``BadChunkError`` without touching the disk if the chunk does not
        verify.
        """
        r = parse_root(root)
        status_row = self._row(r, "staging")
        if status_row is None:
            if self.has(r):
                return False
            raise UnknownBlobError(
                f"no fetch of blob {format_root(r)} is in progress; call begin_fetch first"
            )
        size, count = status_row[0], status_row[1]
        leaf = check_chunk(r, data, proof, self.chunk_size)
        if proof.size != size or proof.chunk_count != count:
            raise BadChunkError(
                f"chunk {proof.index} of blob {format_root(r)}: proof says {proof.size} bytes in "
                f"{proof.chunk_count} chunks, the blob has {size} bytes in {count}"
            )
        try:
            with open(self._staging_path(r), "r+b") as f:
                os.pwrite(f.fileno(), data, proof.index * self.chunk_size)
        except FileNotFoundError:  # promoted or deleted since the check above
            return False
        with self._tx() as db:
            if self._row(r, "staging") is None:  # completed or deleted while we wrote
                return False
            db.execute(
                "INSERT OR REPLACE INTO staged_chunks VALUES (?, ?, ?)",
                (r, proof.index, leaf),
            )
        return True

    def try_complete(self, root: Root) -> list[int]:
        """Promote a partial blob once every chunk is verified; return the chunks still missing.

        The whole root is recomputed from the bytes on disk first. A chunk whose bytes do not
        match its verified leaf (lost in a crash, damaged on disk) is forgotten and reported
        missing, so the fetcher fetches it again. An empty list means the blob is complete.
        """
        r = parse_root(root)
        status = self.staging(r)
        if status is None:
            if self.has(r):
                return []
            raise UnknownBlobError(f"no fetch of blob {format_root(r)} is in progress")
        if status.missing:
            return status.missing
        with self._lock:
            recorded = dict(
                (i, bytes(leaf))
                for i, leaf in self._db.execute(
                    "SELECT idx, leaf FROM staged_chunks WHERE root = ?", (r,)
                ).fetchall()
            )
        src = self._staging_path(r)
        if not src.exists():  # killed after the rename: the bytes are already in complete/
            src = self._complete_path(r)
        leaves, size = _hash_file(src, self.chunk_size)
        bad = [i for i in range(status.chunk_count) if i >= len(leaves) or leaves[i] != recorded[i]]
        if bad or size != status.size:
            with self._tx() as db:
                db.executemany(
                    "DELETE FROM staged_chunks WHERE root = ? AND idx = ?", [(r, i) for i in bad]
                )
            return bad or list(range(status.chunk_count))
        if MerkleTree(leaves).root != r:  # cannot happen if every leaf was proven; checked anyway
            self.delete(r)
            raise CorruptBlobError(
                f"blob {format_root(r)}: recomputed root differs; partial fetch dropped"
            )
        if src != self._complete_path(r):
            with open(src, "rb+") as f:
                os.fsync(f.fileno())  # before taking the index: it may take a while
        with self._tx() as db:
            if self._row(r, "staging") is None:  # completed or deleted meanwhile
                return [] if self.has(r) else list(range(status.chunk_count))
            if src != self._complete_path(r):
                os.replace(src, self._complete_path(r))
                _fsync_dir(self._complete_path(r).parent)
            db.execute(
                "UPDATE blobs SET state = 'complete', leaves = ?, last_access = ? WHERE root = ?",
                (b"".join(leaves), self._clock(), r),
            )
            db.execute("DELETE FROM staged_chunks WHERE root = ?", (r,))
        return []


# --------------------------------------------------------------------- helpers


def _iter_memory(data: bytes | bytearray | memoryview, chunk_size: int) -> Iterator[bytes]:
    view = memoryview(data).cast("B")
    for start in range(0, view.nbytes, chunk_size):
        yield view[start : start + chunk_size]  # type: ignore[misc]


def _iter_file(f: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    while data := f.read(chunk_size):
        while len(data) < chunk_size:  # a short read mid-file must not shift chunk boundaries
            more = f.read(chunk_size - len(data))
            if not more:
                break
            data += more
        yield data


def _hash_file(path: Path, chunk_size: int) -> tuple[list[bytes], int]:
    leaves: list[bytes] = []
    size = 0
    with open(path, "rb") as f:
        for data in _iter_file(f, chunk_size):
            leaves.append(leaf_hash(data))
            size += len(data)
    return leaves, size


def _root_from_name(name: str) -> bytes | None:
    try:
        return parse_root("0x" + name)
    except StoreError:
        return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["BlobRecord", "BlobStore", "StagingStatus", "default_blob_dir"]
