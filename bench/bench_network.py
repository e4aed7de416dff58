"""Protocol tax and throughput of the network, on one machine.

    .venv/bin/python bench/bench_network.py [--reps 5] [--jobs 24] [--out docs/bench-network.md]

Starts a private anvil devnet with the contracts and real `verimesh node run` processes on
127.0.0.1, then measures from a requester in this process (the SDK):

1. Protocol tax: an embedding job sized to take about 1 s in the runtime, through one node
   (audit(0): one provider) against `run_job` of the same job in a warm local process (what
   `verimesh run` does after loading the model). Median of ``--reps``. The extra time is
   split into: post (escrow + draw tx), upload (signed HTTP), node runtime, commit tx,
   reveal tx, reveal seen by the requester, result fetch (signed HTTP + root check).
2. Throughput: ``--jobs`` small generation jobs (tiny decoder) submitted by 4 requester
   accounts in parallel, through 1 node and through 3 nodes (replicate(1): each job runs
   once). Jobs/s = jobs / wall time from the first submit to the last verified result.

Everything (anvil, nodes, requester) shares this machine's cores; the report says how many.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "node"))
from daemon_net import dev_wallet, install_models, node_process, wait_registered  # noqa: E402

from verimesh.chain import devnet  # noqa: E402
from verimesh.chain.devnet import free_port  # noqa: E402
from verimesh.client import Client, audit, replicate  # noqa: E402

SENTENCE = "verimesh turns idle everyday devices into a verifiable market for AI compute, number {}."


def local_seconds(model_root: str, task: str, value, params: dict, reps: int) -> tuple[float, str]:
    """Warm in-process run_job (model loaded once, as a running `verimesh run` would be)."""
    from verimesh.models import api

    model = api.load_model(model_root)
    api.run_job(model, task, value, params)  # warm-up: tables, caches
    times, root = [], ""
    for _ in range(reps):
        started = time.perf_counter()
        result = api.run_job(model, task, value, params)
        times.append(time.perf_counter() - started)
        root = result.output_root if isinstance(result.output_root, str) else "0x" + result.output_root.hex()
    return statistics.median(times), root


def start_nodes(state: Path, tmp: Path, accounts: list[str], env: dict[str, str]) -> tuple[list[subprocess.Popen], list[str]]:
    procs, urls = [], []
    for account in accounts:
        port = free_port()
        procs.append(node_process(state, tmp / f"node-{account}", account, port, tmp / f"node-{account}.log", env))
        urls.append(f"http://127.0.0.1:{port}")
    for url in urls:
        wait_registered(url)
    return procs, urls


def stop_nodes(procs: list[subprocess.Popen], client: Client, accounts: list[str], state: Path) -> None:
    from verimesh.chain import Signer

    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=30)
    for account in accounts:  # leave the market so the next configuration starts clean
        client.net.registry.as_signer(Signer.from_wallet(dev_wallet(state, account))).deregister()


def protocol_tax(client: Client, model: str, texts: list[str], reps: int, node_url: str) -> dict:
    rows = []
    for _ in range(reps + 1):  # first job warms the node (model load)
        started = time.time()
        handle = client.submit(model=model, task="embed", input=texts, mode=audit(0))
        out = handle.result(timeout=300)
        total = time.time() - started
        node = httpx.get(f"{node_url}/v1/jobs/{handle.job_id}").json()["times"]
        t = handle.timings
        rows.append({
            "total": total,
            "post": t["posted"] - started,
            "upload": t["uploaded"] - t["posted"],
            "runtime": node["executed"] - node["ready"],
            "commit": node["committed"] - node["executed"],
            "reveal": node["revealed"] - node["committed"],
            "reveal_seen": t["revealed"] - node["revealed"],
            "fetch": t["fetched"] - t["revealed"],
            "root": out.output_root,
        })
    rows = rows[1:]
    summary = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "root"}
    summary["root"] = rows[-1]["root"]
    return summary


def throughput(state: Path, model: str, jobs: int) -> float:
    requesters = ["dev1", "dev5", "dev6", "dev7"]
    clients = [Client(state / "deployment.json", dev_wallet(state, name)) for name in requesters]
    per = [jobs // len(clients) + (1 if i < jobs % len(clients) else 0) for i in range(len(clients))]
    errors: list[BaseException] = []

    def work(client: Client, count: int, offset: int) -> None:
        try:
            handles = [client.submit(model=model, task="generate", input=f"ROMEO {offset + i}:",
                                     params={"max_tokens": 8, "seed": i}, mode=replicate(1))
                       for i in range(count)]  # fmt: skip
            for h in handles:
                h.result(timeout=600)
        except BaseException as exc:
            errors.append(exc)

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(c, n, 1000 * i)) for i, (c, n) in enumerate(zip(clients, per, strict=True))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    for c in clients:
        c.close()
    if errors:
        raise errors[0]
    return jobs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--texts", type=int, default=0, help="embedding batch (0: size it to ~1 s)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-network-"))
    home = tmp / "home"
    os.environ["VERIMESH_HOME"] = str(home)
    roots = install_models(home, ["minilm", "tiny-shakespeare"])
    env = {"VERIMESH_HOME": str(home)}

    # Size the embedding batch so the local run takes about one second.
    n = args.texts or 4
    if not args.texts:
        while True:
            seconds, _ = local_seconds(roots["minilm"], "embed", [SENTENCE.format(i) for i in range(n)], {}, 1)
            if seconds >= 0.8 or n >= 512:
                break
            n = max(n + 1, int(n / max(seconds, 1e-3)))
    texts = [SENTENCE.format(i) for i in range(n)]
    local, local_root = local_seconds(roots["minilm"], "embed", texts, {}, args.reps)

    state = tmp / "devnet"
    devnet.up(state, port=free_port())
    try:
        client = Client(state / "deployment.json", dev_wallet(state, "dev1"))
        procs, urls = start_nodes(state, tmp, ["dev2"], env)
        tax = protocol_tax(client, roots["minilm"], texts, args.reps, urls[0])
        assert tax["root"] == local_root, "network result differs from the local run"
        one = throughput(state, roots["tiny-shakespeare"], args.jobs)
        stop_nodes(procs, client, ["dev2"], state)
        # dev2 is unbonding now; the three nodes are other accounts (requesters: dev1, dev5-7).
        procs, urls = start_nodes(state, tmp, ["dev3", "dev4", "dev8"], env)
        three = throughput(state, roots["tiny-shakespeare"], args.jobs)
        for proc in procs:
            proc.terminate()
        client.close()
    finally:
        devnet.down(state)

    extra = tax["total"] - local
    report = render(args, n, local, tax, extra, one, three)
    print(report)
    if args.out:
        args.out.write_text(report)


def render(args, n: int, local: float, tax: dict, extra: float, one: float, three: float) -> str:
    cpu = platform.processor() or platform.machine()
    cores = len(os.sched_getaffinity(0))
    parts = [("post (escrow + provider draw, 1 tx)", tax["post"]), ("upload spec + input (signed HTTP)", tax["upload"]),
             ("node: runtime", tax["runtime"]), ("node: commit tx", tax["commit"]), ("node: reveal tx", tax["reveal"]),
             ("requester sees the reveal (poll)", tax["reveal_seen"]), ("result fetch + root check (signed HTTP)", tax["fetch"])]  # fmt: skip
    rows = "\n".join(f"| {name} | {sec * 1000:.0f} ms |" for name, sec in parts)
    return f"""# bench: the network (protocol tax, jobs/s)

Command: `.venv/bin/python bench/bench_network.py --reps {args.reps} --jobs {args.jobs}`
Machine: {cpu}, {cores} cores shared by anvil, the node processes and the requester; Python {platform.python_version()}.

## Protocol tax (embedding job of {n} texts, MiniLM, audit(0), one node)

| | seconds |
|---|---|
| local `run_job` (warm, as `verimesh run` after loading) | {local:.3f} |
| through the network (submit -> verified result) | {tax["total"]:.3f} |
| extra | {extra:.3f} ({100 * extra / local:.1f} %) |

Where the network time goes (medians of {args.reps} jobs):

| step | time |
|---|---|
{rows}

## Throughput (tiny decoder, 8 tokens, replicate(1), 4 requester accounts in parallel)

| nodes | jobs/s |
|---|---|
| 1 | {one:.2f} |
| 3 | {three:.2f} |
"""


if __name__ == "__main__":
    main()
