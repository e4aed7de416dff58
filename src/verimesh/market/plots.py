"""PNG figures of an arena simulation (matplotlib, Agg backend: no display needed).

Kept apart from the simulation so that running it never needs matplotlib (the `bench` extra).
"""

from __future__ import annotations

from pathlib import Path

from verimesh.market.simulation import (
    CARTEL,
    COPIER,
    HONEST,
    LAZY_CONSTANT,
    LAZY_RANDOM,
    Simulation,
)

RULES = (("two_sided", "two-sided clipping (verimesh)"), ("yuma", "one-sided clipping (Yuma)"))


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("plots need matplotlib: pip install 'verimesh[bench]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_simulation(sim: Simulation, out_dir: Path) -> list[Path]:
    """Write market-rewards.png, market-ranks.png, market-validators.png; return the paths."""
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    w = sim.world
    epochs = list(range(w.config.epochs))
    highlight = {w.best: ("best provider", "tab:green"), w.cartel_own: ("cartel's provider", "tab:red")}
    paths = []

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    for ax, (rule, title) in zip(axes, RULES, strict=True):
        res = sim.runs[(rule, True)]
        pool = [sum(r.values()) for r in res.provider_rewards]
        for p in w.providers:
            share = [r.get(p.pid, 0) / t if p.pid in r else None for r, t in zip(res.provider_rewards, pool, strict=True)]
            label, color = highlight.get(p.pid, (None, "0.7"))
            ax.plot(epochs, share, color=color, lw=2.2 if label else 0.9, label=label)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of provider rewards")
    top = axes[0].get_ylim()[1]
    axes[0].set_ylim(0, top * 1.25)  # room for the legend above the lines
    axes[0].legend(loc="upper center", ncol=2)
    fig.suptitle(f"Provider rewards per epoch, cartel {w.config.cartel_stake:.0%} of stake (seed {w.config.seed})")
    fig.tight_layout()
    paths.append(out_dir / "market-rewards.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4.2))
    for (rule, title), style in zip(RULES, ("-", "--"), strict=True):
        res = sim.runs[(rule, True)]
        for pid, (label, color) in highlight.items():
            ax.plot(epochs, [r.get(pid) for r in res.provider_rank], style, color=color,
                    label=f"{label}, {title}", drawstyle="steps-mid")
    ax.invert_yaxis()
    ax.set_xlabel("epoch")
    ax.set_ylabel("rank by consensus (1 = first)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Ranks over epochs")
    fig.tight_layout()
    paths.append(out_dir / "market-ranks.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    groups = (("honest", [HONEST], "tab:green"), ("cartel", [CARTEL], "tab:red"),
              ("copier", [COPIER], "tab:blue"), ("lazy", [LAZY_CONSTANT, LAZY_RANDOM], "tab:gray"))
    for ax, (rule, title) in zip(axes, RULES, strict=True):
        res = sim.runs[(rule, True)]
        for name, kinds, color in groups:
            idx = [i for i, k in enumerate(w.kinds) if k in kinds]
            stake = sum(w.stakes[i] for i in idx)
            total, series = 0, []
            for row in res.validator_rewards:
                total += sum(row[i] for i in idx)
                series.append(total / stake / 1e18 * 1e9)
            ax.plot(epochs, series, color=color, label=name)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("cumulative dividends, tokens per 100% of stake")
    axes[0].legend()
    fig.suptitle("Validator earnings per stake")
    fig.tight_layout()
    paths.append(out_dir / "market-validators.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths
