"""`verimesh models list | import | info` against a temporary store."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from verimesh.cli.main import app
from verimesh.models.minilm import minilm_folder


def _invoke(env: dict[str, str], *args: str):
    return CliRunner().invoke(app, ["models", *args], env=env)


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> tuple[dict[str, str], str]:
    """A store holding MiniLM imported from its Hugging Face folder under the name 'mini'."""
    env = {"VERIMESH_HOME": str(tmp_path_factory.mktemp("home"))}
    result = _invoke(env, "import", str(minilm_folder()), "--name", "mini")
    assert result.exit_code == 0, result.output
    root = next(w for line in result.stdout.splitlines() for w in line.split() if w.startswith("0x"))
    return env, root


def test_list_and_info_show_the_imported_model(imported) -> None:
    env, root = imported
    listed = json.loads(_invoke(env, "list", "--json").stdout)
    [model] = listed["stored"]
    assert model["root"] == root and model["names"] == ["mini"] and model["architecture"] == "bert"
    assert "minilm" in {m["name"] for m in listed["importable"]}
    info = json.loads(_invoke(env, "info", "mini", "--json").stdout)
    assert info["model_root"] == root and info["architecture"] == "bert"
    assert info["config"]["bert"]["hidden"] == 384 and "tokenizer" not in info["config"]
    assert root in _invoke(env, "info", root).stdout


def test_bundle_file_imports_to_the_same_root(imported, tmp_path) -> None:
    env, root = imported
    copy = tmp_path / "mini.safetensors"
    shutil.copy(json.loads(_invoke(env, "list", "--json").stdout)["stored"][0]["path"], copy)
    other = {"VERIMESH_HOME": str(tmp_path / "other")}
    result = _invoke(other, "import", str(copy), "--name", "copy")
    assert result.exit_code == 0, result.output
    assert root in result.stdout


def _model_files(home) -> list:
    models = home / "models"
    return sorted(p.name for p in models.glob("*.safetensors")) if models.exists() else []


def test_truncated_weights_leave_nothing_in_store(tmp_path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(minilm_folder() / name, folder / name)
    with open(minilm_folder() / "model.safetensors", "rb") as f:
        (folder / "model.safetensors").write_bytes(f.read(5_000_000))
    env = {"VERIMESH_HOME": str(tmp_path / "home")}
    result = _invoke(env, "import", str(folder), "--name", "broken")
    assert result.exit_code == 1
    assert "corrupt or truncated" in " ".join(result.stderr.split())
    assert _model_files(tmp_path / "home") == []


def test_unknown_sources_fail_clearly(tmp_path) -> None:
    env = {"VERIMESH_HOME": str(tmp_path / "home")}
    result = _invoke(env, "import", str(tmp_path / "nope"))
    assert result.exit_code == 1 and "bundled model name" in " ".join(result.stderr.split())
    (tmp_path / "notes.txt").write_text("not a model")
    result = _invoke(env, "import", str(tmp_path / "notes.txt"))
    assert result.exit_code == 1 and "not a model this verimesh can import" in " ".join(result.stderr.split())
    result = _invoke(env, "info", "ghost")
    assert result.exit_code == 1 and "no model named 'ghost'" in result.stderr
    assert _model_files(tmp_path / "home") == []
