"""Run every benchmark, then assemble docs/benchmarks.md from the per-part reports.

Each ``bench/bench_*.py`` script measures one part against its real alternative in the
same run and writes ``docs/bench-<part>.md``. This script runs them one after another (the
machine has 2 cores: running them in parallel would measure contention, not code) and
concatenates the parts into ``docs/benchmarks.md`` so readers find every figure in one place.

    .venv/bin/python bench/run_all.py              # run everything, then assemble
    .venv/bin/python bench/run_all.py --assemble   # only re-assemble from existing parts
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from verimesh.benchinfo import machine

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

HEADER = """# Benchmarks

Every figure below was produced by a script in `bench/`, run on the machine it names, against
the real alternative in the same run (ratios, not absolute times, are what carry over to
other machines). Re-run everything with `make bench` (installs the CPU build of torch for the
float baselines, then runs `bench/run_all.py`); each section names its own command.

"""


def run_benches() -> list[tuple[str, int, float]]:
    results = []
    for script in sorted((ROOT / "bench").glob("bench_*.py")):
        started = time.perf_counter()
        print(f"== {script.name}", flush=True)
        code = subprocess.call([sys.executable, str(script)], cwd=ROOT)
        results.append((script.name, code, time.perf_counter() - started))
    return results


def demote(markdown: str) -> str:
    """Push every heading one level down so each part nests under the report's title."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        out.append("#" + line if line.startswith("#") and not fenced else line)
    return "\n".join(out)


def assemble() -> Path:
    parts = sorted(DOCS.glob("bench-*.md"))
    body = [HEADER, f"Assembled on: {machine()}.\n\n"]
    body.append("Sections: " + ", ".join(f"`{p.name}`" for p in parts) + "\n\n")
    for part in parts:
        body.append(demote(part.read_text().strip()) + "\n\n---\n\n")
    out = DOCS / "benchmarks.md"
    out.write_text("".join(body).rstrip("-\n ") + "\n")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assemble", action="store_true", help="only assemble the report")
    args = parser.parse_args()
    failed = []
    if not args.assemble:
        for name, code, seconds in run_benches():
            print(f"   {name}: exit {code} in {seconds:.0f} s")
            if code:
                failed.append(name)
    print(f"wrote {assemble().relative_to(ROOT)}")
    if failed:
        print("FAILED: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
