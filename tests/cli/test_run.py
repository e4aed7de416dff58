"""`verimesh run`: real jobs on the bundled MiniLM, roots in JSON, clear errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from verimesh.cli.main import app


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    return {"VERIMESH_HOME": str(tmp_path_factory.mktemp("home"))}


def _run(env: dict[str, str], *args: str):
    return CliRunner().invoke(app, ["run", *args], env=env)


def _json(env: dict[str, str], *args: str) -> dict:
    result = _run(env, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_embed_auto_imports_and_prints_roots(env) -> None:
    out = _json(env, "--model", "minilm", "--task", "embed", "--input", "A man is eating food.")
    assert {"output", "output_root", "trace_root", "model_root", "seconds"} <= set(out)
    assert len(out["output"]) == 384
    assert abs(sum(v * v for v in out["output"]) - 1.0) < 1e-3
    for key in ("output_root", "trace_root", "model_root"):
        assert out[key].startswith("0x") and len(out[key]) == 66
    # same job by root, again: same bytes, same trace
    again = _json(env, "--model", out["model_root"], "--task", "embed", "--input", "A man is eating food.")
    assert (again["output_root"], again["trace_root"]) == (out["output_root"], out["trace_root"])
    other = _json(env, "--model", "minilm", "--task", "embed", "--input", "A man is eating bread.")
    assert other["output_root"] != out["output_root"]


def test_plain_output_shows_roots(env) -> None:
    result = _run(env, "-m", "minilm", "-t", "embed", "-i", "hello world")
    assert result.exit_code == 0, result.output
    assert "embedding (384 dims)" in result.stdout
    for key in ("model_root", "output_root", "trace_root"):
        assert key in result.stdout


def test_no_trace_keeps_output_root(env) -> None:
    traced = _json(env, "-m", "minilm", "-t", "embed", "-i", "same input")
    fast = _json(env, "-m", "minilm", "-t", "embed", "-i", "same input", "--no-trace")
    assert fast["trace_root"] is None and fast["output_root"] == traced["output_root"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "no-such-model", "-t", "embed", "-i", "x"], "no model named 'no-such-model'"),
        (["-m", "0x" + "ab" * 32, "-t", "embed", "-i", "x"], "verimesh models import"),
        (["-m", "minilm", "-t", "generate", "-i", "x"], "use --task embed"),
        (["-m", "minilm", "-t", "translate", "-i", "x"], "unknown task 'translate'"),
        (["-m", "minilm", "-t", "embed", "-i", "word " * 600], "context is 512"),
    ],
)
def test_bad_jobs_fail_clearly(env, args: list[str], message: str) -> None:
    result = _run(env, *args)
    assert result.exit_code == 1
    assert message in " ".join(result.stderr.split())


def test_run_job_batch_and_output_bytes(env, monkeypatch) -> None:
    from verimesh.crypto.merkle import blob_root
    from verimesh.models.api import load_model, output_bytes, run_job
    from verimesh.runtime import from_canonical_bytes

    monkeypatch.setenv("VERIMESH_HOME", env["VERIMESH_HOME"])
    model = load_model("minilm")
    batch = run_job(model, "embed", ["A man is eating food.", "hello world"])
    single = run_job(model, "embed", "hello world")
    assert len(batch.output) == 2 and batch.output[1] == single.output
    blob = output_bytes(batch)
    assert "0x" + blob_root(blob).hex() == batch.output_root
    assert from_canonical_bytes(blob).shape == (2, 384)
    with pytest.raises(ValueError, match="takes one input text"):
        run_job(model, "generate", ["a", "b"])
