"""Compilation and the artifact cache: keyed by sources + compiler, rebuilt on any change."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from verimesh.chain import compile as chain_compile
from verimesh.chain.compile import load_artifacts, sources_digest
from verimesh.chain.errors import CompileError

PROBE_DIR = Path(__file__).parent / "contracts"


def test_compiles_contracts_and_skips_modules(probe_artifacts):
    assert set(probe_artifacts.contracts) == {"Probe"}
    probe = probe_artifacts["Probe"]
    names = {item.get("name") for item in probe.abi}
    assert {"store", "entry", "doubled", "Stored"} <= names
    assert len(probe.bytecode) > 100


def test_cache_hit_does_not_recompile(tmp_path, monkeypatch):
    load_artifacts(PROBE_DIR, tmp_path)
    calls = []
    monkeypatch.setattr(chain_compile, "compile_contract", lambda *a: calls.append(a))
    again = load_artifacts(PROBE_DIR, tmp_path)
    assert calls == []
    assert again["Probe"].bytecode


def test_editing_an_imported_module_rebuilds(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(PROBE_DIR, src)
    cache = tmp_path / "cache"
    before = load_artifacts(src, cache)
    module = src / "probe_math.vy"
    module.write_text(module.read_text().replace("2 * x", "3 * x"))
    after = load_artifacts(src, cache)
    assert after.sources_sha256 != before.sources_sha256
    assert after["Probe"].bytecode != before["Probe"].bytecode
    assert len(list(cache.glob("*.json"))) == 2


def test_the_cache_lives_in_the_home_unless_a_shared_one_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("VERIMESH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VERIMESH_ARTIFACTS", raising=False)
    assert chain_compile.default_cache_dir() == tmp_path / "home" / "artifacts"
    monkeypatch.setenv("VERIMESH_ARTIFACTS", str(tmp_path / "shared"))
    assert chain_compile.default_cache_dir() == tmp_path / "shared"
    assert load_artifacts(PROBE_DIR)["Probe"].bytecode
    assert list((tmp_path / "shared").glob("*.json")) and not (tmp_path / "home").exists()


def test_a_shared_cache_keeps_what_another_process_added_meanwhile(tmp_path, monkeypatch):
    src = tmp_path / "src"
    shutil.copytree(PROBE_DIR, src)
    shutil.copy(src / "Probe.vy", src / "Other.vy")
    cache = tmp_path / "cache"
    real = chain_compile.compile_contract

    def compile_while_another_process_writes(path, contracts_dir):
        if path.stem == "Probe":  # meanwhile, another process compiles Other into the same file
            load_artifacts(src, cache, names=["Other"])
        return real(path, contracts_dir)

    monkeypatch.setattr(chain_compile, "compile_contract", compile_while_another_process_writes)
    load_artifacts(src, cache, names=["Probe"])
    monkeypatch.setattr(chain_compile, "compile_contract", lambda *a: pytest.fail(f"recompiled {a[0]}"))
    both = load_artifacts(src, cache, names=["Probe", "Other"])
    assert both["Other"].bytecode == both["Probe"].bytecode


# A process that compiles slowly and logs what it compiled, then prints what it loaded.
_COMPILING_PROCESS = """
import sys, time
from pathlib import Path
from verimesh.chain import compile as chain_compile
real = chain_compile.compile_contract
def logged(path, contracts_dir):
    with open(sys.argv[3], "a") as log:
        log.write(path.stem + "\\n")
    time.sleep(0.5)
    return real(path, contracts_dir)
chain_compile.compile_contract = logged
print(" ".join(sorted(chain_compile.load_artifacts(Path(sys.argv[1]), Path(sys.argv[2])).contracts)))
"""


def test_processes_sharing_a_cold_cache_compile_each_contract_once(tmp_path):
    """Two processes start on an empty cache at once: each contract is compiled by one of
    them, the other waits for it, and both load every contract."""
    src = tmp_path / "src"
    shutil.copytree(PROBE_DIR, src)
    names = ["Probe", "Second", "Third", "Fourth"]
    for name in names[1:]:
        shutil.copy(src / "Probe.vy", src / f"{name}.vy")
    log = tmp_path / "compiled.log"
    args = [sys.executable, "-c", _COMPILING_PROCESS, str(src), str(tmp_path / "cache"), str(log)]
    processes = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0].split() for p in processes]
    assert [p.returncode for p in processes] == [0, 0]
    assert outputs == [sorted(names)] * 2
    assert sorted(log.read_text().split()) == sorted(names)


def test_digest_covers_the_compiler_version(monkeypatch):
    before = sources_digest(PROBE_DIR)
    monkeypatch.setattr(chain_compile.vyper, "__version__", "0.0.0-other")
    assert sources_digest(PROBE_DIR) != before


def test_corrupt_cache_file_is_rebuilt(tmp_path):
    first = load_artifacts(PROBE_DIR, tmp_path)
    cache_file = tmp_path / f"{first.sources_sha256}.json"
    cache_file.write_text("{not json")
    assert load_artifacts(PROBE_DIR, tmp_path)["Probe"].bytecode == first["Probe"].bytecode


def test_compile_error_names_the_file(tmp_path):
    (tmp_path / "Broken.vy").write_text("# pragma version ~=0.4.3\n@external\ndef f() -> uint256:\n    return x\n")
    with pytest.raises(CompileError, match=r"Broken\.vy does not compile"):
        load_artifacts(tmp_path, tmp_path / "cache")


def test_unknown_contract_name_lists_known(probe_artifacts):
    with pytest.raises(CompileError, match="compiled: Probe"):
        probe_artifacts["Nope"]
