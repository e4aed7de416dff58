"""The node owner's settings: one TOML file, overridable by command-line flags.

A device owner edits ``$VERIMESH_HOME/node/node.toml`` once (when the node may work, how
much of the machine it may take) and passes flags for one-off changes. Both go through the
same pydantic model, so a bad value is refused with the key that holds it and what to write
instead, before the node touches the chain or the CPU.

    [node]
    price = 1.5
    [idle]
    max_other_cpu_percent = 25
    grace_seconds = 60
    allowed_hours = ["22:00-07:00"]
    [caps]
    cores = 1
    memory_mb = 2048

The full reference is docs/node-device.md.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import psutil
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from verimesh.verify.adversary import Behaviour

CONFIG_NAME = "node.toml"
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
# Below this a worker cannot even import numpy and the runtime (measured: ~120 MB).
MIN_MEMORY_MB = 256


class ConfigError(ValueError):
    """A config file or flag the node cannot use; the message names the key and the fix."""


def parse_hours(window: str) -> tuple[int, int]:
    """``"HH:MM-HH:MM"`` -> (start, end) in minutes after midnight; end < start wraps midnight."""
    match = _HOURS.match(window)
    if match is None:
        raise ValueError(
            f'{window!r} is not a time window: write it as "HH:MM-HH:MM", e.g. "22:00-07:00"'
        )
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ValueError(f"{window!r} is empty: to allow every hour, leave allowed_hours out")
    return start, end


class IdlePolicy(BaseModel):
    """When the node may compute (BOINC's "computing preferences", same defaults)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_other_cpu_percent: float = Field(
        25.0,
        gt=0,
        le=100,
        description="pause as soon as OTHER processes use more than this share of all cores",
    )
    grace_seconds: float = Field(
        60.0,
        ge=0,
        le=86_400,
        description="the other load must stay below the limit this long before work (re)starts",
    )
    allow_on_battery: bool = Field(False, description="work while the laptop runs on battery")
    allowed_hours: list[str] | None = Field(
        None, description='local time windows "HH:MM-HH:MM" when work is allowed; none = any time'
    )
    check_seconds: float = Field(
        0.5,
        gt=0,
        le=60,
        description="how often the load is measured: the reaction time to the owner",
    )

    @field_validator("allowed_hours")
    @classmethod
    def _windows(cls, windows: list[str] | None) -> list[str] | None:
        if windows is not None:
            if not windows:
                raise ValueError(
                    "an empty list would never allow work: leave allowed_hours out instead"
                )
            for window in windows:
                parse_hours(window)
        return windows


def _default_cores() -> int:
    # Half the machine: the owner keeps a core for themselves even when idle work runs.
    return max(1, len(os.sched_getaffinity(0)) // 2)


def _default_memory_mb() -> int:
    # A quarter of the RAM: enough for the shipped models, far from pushing the owner into swap.
    return max(MIN_MEMORY_MB, psutil.virtual_memory().total // (4 * 1024 * 1024))


class ResourceCaps(BaseModel):
    """How much of the device a job's worker process may take."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cores: int = Field(
        default_factory=_default_cores, ge=1, description="CPU cores the worker is pinned to"
    )
    memory_mb: int = Field(
        default_factory=_default_memory_mb,
        ge=MIN_MEMORY_MB,
        description="address-space cap of the worker",
    )
    nice: int = Field(
        19, ge=0, le=19, description="scheduling niceness of the worker (19 = lowest priority)"
    )

    @field_validator("cores")
    @classmethod
    def _cores_exist(cls, cores: int) -> int:
        available = len(os.sched_getaffinity(0))
        if cores > available:
            raise ValueError(
                f"this machine lets the node use {available} cores; {cores} is too many"
            )
        return cores


class NodeSettings(BaseModel):
    """Network-facing settings (the ``[node]`` table); flags of ``verimesh node run`` override them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    deployment: Path | None = Field(None, description="deployment.json of the network")
    wallet: str | None = Field(None, description="verimesh wallet that stakes and earns")
    host: str = "127.0.0.1"
    port: int = Field(8700, ge=1, le=65_535)
    endpoint: str | None = Field(None, description="public URL registered on chain")
    price: float = Field(1.0, ge=0, description="price per job in VMT")
    stake: float | None = Field(
        None, ge=0, description="stake in VMT; default the registry minimum"
    )
    models: list[str] = Field(
        default_factory=list, description="model names or roots to serve; empty = all local"
    )
    poll_seconds: float = Field(0.2, gt=0, le=60, description="seconds between chain polls")
    blob_cap_mb: int | None = Field(
        20_480,
        ge=1,
        description="cap of the node's blob store in MiB (finished jobs' blobs are evicted first)",
    )
    adversary: Behaviour = Field(
        Behaviour.HONEST,
        description="misbehave on purpose (tests and demos of the adversary zoo, docs/node.md)",
    )

    @field_validator("adversary")
    @classmethod
    def _provider_behaviour(cls, behaviour: Behaviour) -> Behaviour:
        if behaviour.is_validator:
            raise ValueError(
                f"{behaviour.value} is a validator behaviour: use `verimesh validator run --adversary`"
            )
        return behaviour


class NodeConfig(BaseModel):
    """Everything the owner decides, validated. ``NodeConfig.load(path, overrides)``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path
    node: NodeSettings = Field(default_factory=NodeSettings)
    idle: IdlePolicy = Field(default_factory=IdlePolicy)
    caps: ResourceCaps = Field(default_factory=ResourceCaps)

    @classmethod
    def load(
        cls,
        toml_path: Path | None,
        overrides: dict[str, Any] | None = None,
        home: Path | None = None,
    ) -> NodeConfig:
        """Read ``toml_path`` (missing file = defaults), apply ``overrides`` and validate.

        ``overrides`` maps dotted keys to values (``{"idle.grace_seconds": 30}``); ``None``
        values are skipped, so CLI options that were not given can be passed as they are.
        ``home`` defaults to the file's folder.
        """
        data: dict[str, Any] = {}
        where = "flags"
        if toml_path is not None and toml_path.is_file():
            where = str(toml_path)
            try:
                data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{toml_path} is not valid TOML: {exc}") from None
            except UnicodeDecodeError:
                raise ConfigError(f"{toml_path} is not UTF-8 text") from None
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        for key, value in given.items():
            _set_dotted(data, key, value)
        if given and where != "flags":
            where += " and flags"
        if "home" not in data:
            base = home or (toml_path.parent if toml_path is not None else None)
            if base is None:
                raise ConfigError(
                    "the node's home folder is unknown: pass --home or a config file path"
                )
            data["home"] = base
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_explain(exc, where)) from None


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for part in parts[:-1]:
        inner = data.setdefault(part, {})
        if not isinstance(inner, dict):
            raise ConfigError(f"config key {part} must be a table ([{part}]) to set {key}")
        data = inner
    data[parts[-1]] = value


def _explain(exc: ValidationError, where: str) -> str:
    """One line per bad key: ``idle.max_other_cpu_percent = 150: must be <= 100``."""
    lines = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key: check its spelling against docs/node-device.md"
        elif error["type"] == "missing":
            message = "required"
        value = error.get("input")
        shown = (
            ""
            if error["type"] in ("extra_forbidden", "missing") or isinstance(value, dict)
            else f" = {value!r}"
        )
        lines.append(f"  {key}{shown}: {message}")
    return f"bad node config ({where}):\n" + "\n".join(lines)
