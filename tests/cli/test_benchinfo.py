"""One description of the machine for every benchmark (verimesh.benchinfo)."""

from __future__ import annotations

import platform
from pathlib import Path

from verimesh.benchinfo import cores, cpu_name, machine, machine_facts

ROOT = Path(__file__).resolve().parents[2]


def test_the_machine_line_names_cpu_cores_python_and_system() -> None:
    line = machine()
    assert line.startswith(f"{cpu_name()}, {cores()} cores, Python {platform.python_version()}, ")
    assert line.endswith(platform.release())


def test_extra_facts_follow_the_machine_after_commas() -> None:
    assert machine("anvil 1.0.0", "numpy 2") == f"{machine()}, anvil 1.0.0, numpy 2"


def test_the_facts_are_json_friendly() -> None:
    facts = machine_facts()
    assert sorted(facts) == ["cores", "cpu", "python", "system"]
    assert isinstance(facts["cores"], int) and facts["cores"] >= 1
    assert facts["cpu"]


def test_no_bench_reads_the_cpu_itself() -> None:
    """The benches and `verimesh bench` describe the machine through benchinfo only."""
    sources = [*sorted((ROOT / "bench").glob("*.py")), ROOT / "src/verimesh/cli/bench.py"]
    readers = [p.name for p in sources if "/proc/cpuinfo" in p.read_text() or "def machine(" in p.read_text()]
    assert readers == []
