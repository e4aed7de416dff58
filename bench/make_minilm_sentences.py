"""Build src/verimesh/models/data/minilm_eval_sentences.txt: the offline sentence set on which
the exact MiniLM embeddings are compared with float ones (docs/models.md, quality).

Sources, all on disk: the first sentence of the docstrings of a fixed list of Python standard
library modules (technical English), and the held-out prose shipped for the decoder
(src/verimesh/models/heldout_en.txt). Disjoint from the calibration set by construction
(that one is hand-written, models/data/minilm_calibration.txt). Run once; the output is committed.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

MODULES = [
    "json",
    "os",
    "re",
    "collections",
    "itertools",
    "functools",
    "random",
    "string",
    "textwrap",
    "datetime",
    "calendar",
    "decimal",
    "fractions",
    "statistics",
    "pathlib",
    "shutil",
    "zipfile",
    "csv",
    "logging",
    "argparse",
    "unittest",
    "http.client",
    "email",
    "socket",
    "threading",
    "queue",
    "heapq",
    "bisect",
    "pickle",
    "sqlite3",
    "gzip",
    "hashlib",
    "hmac",
    "secrets",
    "uuid",
    "tempfile",
    "glob",
    "difflib",
    "inspect",
    "ast",
    "typing",
    "enum",
    "dataclasses",
    "contextlib",
    "abc",
    "operator",
    "copy",
    "pprint",
    "types",
    "locale",
    "codecs",
    "html",
    "urllib.parse",
    "sched",
    "subprocess",
    "asyncio",
    "tarfile",
    "zlib",
    "configparser",
    "base64",
    "ipaddress",
    "timeit",
    "doctest",
]
ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src/verimesh/models/data/minilm_eval_sentences.txt"
SPLIT = re.compile(r"(?<=[.!?])\s+")


def docstring_sentences() -> list[str]:
    out: list[str] = []
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, obj in sorted(vars(module).items()):
            if attr.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            doc = inspect.getdoc(obj)
            if not doc:
                continue
            first = SPLIT.split(doc.split("\n\n")[0].replace("\n", " "))[0].strip()
            if 30 <= len(first) <= 200 and "(" not in first[:20] and first.endswith("."):
                out.append(first)
    return list(dict.fromkeys(out))


def prose_sentences() -> list[str]:
    text = (ROOT / "src/verimesh/models/heldout_en.txt").read_text().replace("\n", " ")
    return [s.strip() for s in SPLIT.split(text) if len(s.strip()) >= 20]


def main() -> None:
    docs = docstring_sentences()
    prose = prose_sentences()
    picked = prose + docs[:: max(1, len(docs) // (300 - len(prose)))][: 300 - len(prose)]
    OUT.write_text("\n".join(picked) + "\n")
    print(
        f"{len(picked)} sentences ({len(prose)} prose, {len(picked) - len(prose)} docstrings) -> {OUT}"
    )


if __name__ == "__main__":
    main()
