"""What a benchmark ran on: one description of the machine for every bench's report.

Each figure in docs/bench-*.md is only comparable with others taken on a like machine, so
every bench prints this line (``machine()``) or embeds these facts (``machine_facts()``)
next to its numbers.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU model as the kernel names it (``platform.processor()`` is only the
    architecture on Linux), or the architecture where /proc/cpuinfo says nothing."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cores() -> int:
    """Cores this process may run on (its affinity: a container or taskset may allow fewer
    than the machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_facts() -> dict[str, object]:
    """cpu, cores, python, system: the machine as a JSON-friendly dict."""
    return {
        "cpu": cpu_name(),
        "cores": cores(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def machine(*extra: str) -> str:
    """One line: ``"<cpu>, <n> cores, Python <v>, <system> <release>"``, then ``extra``
    (for example the EVM node's version) after commas."""
    facts = machine_facts()
    parts = [str(facts["cpu"]), f"{facts['cores']} cores", f"Python {facts['python']}", str(facts["system"])]
    return ", ".join([*parts, *extra])
