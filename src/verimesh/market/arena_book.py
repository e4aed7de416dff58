"""Arenas remembered by name in ``$VERIMESH_HOME/arenas.json`` (name -> address, chain, task
family), written by `verimesh arena create` and read by every later command and the dashboard."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ValidationError

from verimesh.paths import verimesh_home

ARENAS_FILE = "arenas.json"


class ArenaBookError(ValueError):
    """The arenas file cannot be read; the message says which file and what to do."""


class ArenaRecord(BaseModel):
    """One arena remembered by name: enough to find it again and to notice a stale entry."""

    address: str
    chain_id: int
    task_family: str
    spec_hash: str
    token: str
    created_block: int


class ArenaBook(BaseModel):
    format_version: int = 1
    arenas: dict[str, ArenaRecord] = {}


def book_path() -> Path:
    return verimesh_home() / ARENAS_FILE


def load_book() -> ArenaBook:
    path = book_path()
    if not path.is_file():
        return ArenaBook()
    try:
        return ArenaBook.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise ArenaBookError(f"{path} is not a valid arenas file ({exc.error_count()} errors); fix or delete it") from None


def save_book(book: ArenaBook) -> None:
    path = book_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(book.model_dump_json(indent=2) + "\n")
    tmp.replace(path)
