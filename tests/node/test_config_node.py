"""NodeConfig: TOML + flag overrides, and errors that name the key to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from verimesh.node.config import ConfigError, IdlePolicy, NodeConfig, parse_hours

EXAMPLE = """
[node]
price = 1.5
models = ["tiny-shakespeare"]

[idle]
max_other_cpu_percent = 30
grace_seconds = 45
allowed_hours = ["22:00-07:00", "12:00-13:30"]

[caps]
cores = 1
memory_mb = 1024
nice = 15
"""


def test_file_then_flags_win(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(EXAMPLE)
    config = NodeConfig.load(
        path, {"idle.grace_seconds": 5, "caps.memory_mb": None, "node.port": 8801}
    )
    assert config.home == tmp_path
    assert (
        config.node.price == 1.5
        and config.node.models == ["tiny-shakespeare"]
        and config.node.port == 8801
    )
    assert config.idle.grace_seconds == 5  # the flag
    assert config.idle.max_other_cpu_percent == 30  # the file
    assert config.caps.memory_mb == 1024  # a flag left unset (None) keeps the file's value
    assert (config.caps.cores, config.caps.nice) == (1, 15)


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    config = NodeConfig.load(tmp_path / "absent.toml")
    assert config.idle == IdlePolicy()
    assert config.idle.max_other_cpu_percent == 25 and not config.idle.allow_on_battery
    assert config.caps.nice == 19 and config.caps.cores >= 1 and config.caps.memory_mb >= 256


def test_every_bad_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(
        '[idle]\nmax_other_cpu_percent = 150\nallowed_hours = ["7-9"]\ngrace = 3\n'
        "[caps]\ncores = 4096\nmemory_mb = 10\n"
    )
    with pytest.raises(ConfigError) as err:
        NodeConfig.load(path)
    text = str(err.value)
    assert str(path) in text
    assert "idle.max_other_cpu_percent = 150" in text
    assert "idle.allowed_hours" in text and '"HH:MM-HH:MM"' in text
    assert "idle.grace: unknown key" in text
    assert "caps.cores = 4096" in text and "cores; 4096 is too many" in text
    assert "caps.memory_mb = 10" in text and "256" in text


def test_bad_flag_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\(flags\):\n  caps.nice = -5"):
        NodeConfig.load(None, {"caps.nice": -5}, home=tmp_path)
    path = tmp_path / "node.toml"
    path.write_text("[idle\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        NodeConfig.load(path)
    with pytest.raises(ConfigError, match="home folder is unknown"):
        NodeConfig.load(None)
    with pytest.raises(ConfigError, match="leave allowed_hours out"):
        NodeConfig.load(None, {"idle.allowed_hours": []}, home=tmp_path)


def test_parse_hours() -> None:
    assert parse_hours("22:00-07:30") == (22 * 60, 7 * 60 + 30)
    for bad in ("24:00-01:00", "9:00-10:00", "10:00-10:00"):
        with pytest.raises(ValueError):
            parse_hours(bad)
