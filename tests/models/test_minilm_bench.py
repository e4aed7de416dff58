"""The MiniLM bench case runs end to end (tiny batch) and `verimesh bench runtime` says
clearly what it cannot do. Speed numbers live in docs, never in assertions."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from verimesh.cli.main import app


def test_unknown_bench_case_is_refused() -> None:
    result = CliRunner().invoke(app, ["bench", "runtime", "--only", "gpt5"])
    assert result.exit_code == 1
    assert "unknown bench cases ['gpt5']" in " ".join(result.stderr.split())


@pytest.mark.slow
def test_encoder_bench_case_reports_every_field(tmp_path, monkeypatch) -> None:
    pytest.importorskip("torch")
    from verimesh.models.minilm_bench import run_encoder_bench

    monkeypatch.setenv("VERIMESH_HOME", str(tmp_path))
    row = run_encoder_bench(threads=1, batch=2, repeats=1)
    for field in ("model", "exact_s", "torch_s", "ratio", "trace_overhead", "exact_peak_rss_mb",
                  "torch_peak_rss_mb", "cpu_ratio"):
        assert field in row
    assert row["model"] == "minilm" and row["exact_s"] > 0 and row["torch_s"] > 0
    assert row["cosine_to_torch_min"] >= 0.99  # both sides embedded the same sentences
