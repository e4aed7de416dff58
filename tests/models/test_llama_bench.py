"""The decoder benchmark runs end to end on the tiny model (numbers go to docs, not asserts)."""

from __future__ import annotations

import pytest

from verimesh.models.llama_bench import quality, run_decoder_bench


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("VERIMESH_HOME", str(tmp_path))
    return tmp_path


def test_quality_report_on_the_tiny_model(home) -> None:
    report = quality("tiny-shakespeare")
    assert report["positions"] == 256
    assert report["top1_agreement"] >= 0.9
    assert abs(report["ppl_change"]) <= 0.05
    assert any((home / "models").glob("*.safetensors"))  # the bundle went to the store


@pytest.mark.slow
def test_speed_bench_against_torch_on_the_tiny_model(home) -> None:
    pytest.importorskip("torch")
    report = run_decoder_bench("tiny-shakespeare", tokens=6, threads=1)
    for field in ("model", "exact_s", "torch_s", "ratio", "trace_overhead", "exact_peak_rss_mb"):
        assert field in report
    assert report["exact_s"] > 0 and report["torch_s"] > 0
    assert report["greedy_tokens_equal_to_torch"] >= 1
