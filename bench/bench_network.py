"""Protocol tax and throughput of the network, on one machine.

    .venv/bin/python bench/bench_network.py [--reps 5] [--jobs 24] [--out docs/bench-network.md]

Starts a private anvil devnet with the contracts and real `verimesh node run` processes on
127.0.0.1, then measures from a requester in this process (the SDK):

1. Protocol tax: a generation job on the shipped tiny decoder sized to take about 1 s,
   through one node (audit(0): one provider) against ``run_job`` of the same job in a warm
   local process (what `verimesh run` does after loading the model). Median of ``--reps``,
   for a node running jobs in-process and for one running them in its capped worker
   subprocess (the default). The time is split into: post (escrow + draw tx), upload
   (signed HTTP), node runtime, commit tx, reveal tx, reveal seen by the requester, result
   fetch (signed HTTP + root check).
2. Throughput: ``--jobs`` small generation jobs (8 tokens) submitted by 4 requester
   accounts in parallel, through 1 node and through 3 nodes (replicate(1): each job runs
   once). Jobs/s = jobs / wall time from the first submit to the last verified result.

Everything (anvil, nodes, requester) shares this machine's cores; the report says how many.
"""

from __future__ import annotations

import argparse
import os
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
from daemon_net import (  # noqa: E402
    dev_wallet,
    install_models,
    node_process,
    share_selfbench,
    wait_registered,
)

from verimesh.benchinfo import machine  # noqa: E402
from verimesh.chain import devnet  # noqa: E402
from verimesh.chain.devnet import free_port  # noqa: E402
from verimesh.client import Client, audit, replicate  # noqa: E402


def local_seconds(model_root: str, prompt: str, params: dict, reps: int) -> tuple[float, str]:
    """Warm in-process ``run_job`` (model loaded once): what `verimesh run` does for this
    job after its start-up, so the comparison charges the network only for the network."""
    from verimesh.models import api

    model = api.load_model(model_root)
    api.run_job(model, "generate", prompt, params)  # warm-up: tables, caches
    times, root = [], ""
    for _ in range(reps):
        started = time.perf_counter()
        result = api.run_job(model, "generate", prompt, params)
        times.append(time.perf_counter() - started)
        root = result.output_root
    return statistics.median(times), root


def start_nodes(
    state: Path, tmp: Path, accounts: list[str], env: dict[str, str], extra: list[str]
) -> tuple[list[subprocess.Popen], list[str]]:
    procs, urls = [], []
    for account in accounts:
        port = free_port()
        home = tmp / f"node-{account}"
        # Stake for 100 bonds of 10 VMT: concurrent jobs lock a bond each.
        args = [*extra, "--stake", "1000"]
        procs.append(node_process(state, home, account, port, tmp / f"node-{account}.log", env, tmp / "bench", args))
        urls.append(f"http://127.0.0.1:{port}")
    for account, url in zip(accounts, urls, strict=True):
        wait_registered(url, timeout=300)
        share_selfbench(tmp / f"node-{account}", tmp / "bench")
    return procs, urls


def stop_nodes(procs: list[subprocess.Popen], client: Client, accounts: list[str], state: Path) -> None:
    from verimesh.chain import Signer

    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=30)
    for account in accounts:  # leave the market so the next configuration starts clean
        client.net.registry.as_signer(Signer.from_wallet(dev_wallet(state, account))).deregister()


def protocol_tax(client: Client, model: str, prompt: str, params: dict, reps: int, node_url: str) -> dict:
    """Each network job is paired with the same job run locally just before it: on a shared
    machine the job's own runtime drifts by 10-20 % from minute to minute, which would
    otherwise be read as protocol tax."""
    from verimesh.models import api

    local_model = api.load_model(model)
    rows = []
    for _ in range(reps + 1):  # first job warms the node (model load)
        local_started = time.perf_counter()
        api.run_job(local_model, "generate", prompt, params)
        local = time.perf_counter() - local_started
        started = time.time()
        handle = client.submit(model=model, task="generate", input=prompt, params=params, mode=audit(0))
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
            "local": local,
            "tax": (total - local) / local,
            "steps_tax": (total - (node["executed"] - node["ready"])) / local,
            "root": out.output_root,
        })
    rows = rows[1:]
    summary = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "root"}
    summary["root"] = rows[-1]["root"]
    return summary


def throughput(state: Path, model: str, jobs: int) -> float:
    # Not dev1: the main client sends as dev1, and two clients of one account race nonces.
    requesters = ["dev0", "dev5", "dev6", "dev7"]
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
    parser.add_argument("--worker-reps", type=int, default=None, help="reps through the worker node [--reps]")
    parser.add_argument("--tokens", type=int, default=0, help="tokens of the tax job (0: size it to ~1 s)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-network-"))
    home = tmp / "home"
    os.environ["VERIMESH_HOME"] = str(home)
    roots = install_models(home, ["tiny-shakespeare"])
    tiny = roots["tiny-shakespeare"]
    env = {"VERIMESH_HOME": str(home)}
    prompt = "ROMEO:"

    # Size the generation so the local run takes about one second.
    tokens = args.tokens or 8
    while not args.tokens:
        seconds, _ = local_seconds(tiny, prompt, {"max_tokens": tokens, "seed": 1}, 1)
        if seconds >= 0.8 or tokens >= 200:
            break
        tokens = min(200, max(tokens + 1, int(tokens / max(seconds, 1e-3))))
    params = {"max_tokens": tokens, "seed": 1}
    local, local_root = local_seconds(tiny, prompt, params, args.reps)

    state = tmp / "devnet"
    devnet.up(state, port=free_port())
    results: dict = {}
    running: list[subprocess.Popen] = []  # every node process, stopped whatever happens
    try:
        client = Client(state / "deployment.json", dev_wallet(state, "dev1"))
        # 1. the tax through a node running jobs in-process, then through one with the worker
        procs, urls = start_nodes(state, tmp, ["dev2"], env, ["--in-process"])
        running += procs
        results["in-process"] = protocol_tax(client, tiny, prompt, params, args.reps, urls[0])
        print(f"local {local:.3f} s; in-process node: {results['in-process']}", flush=True)
        # 2. jobs/s through that one node
        results["one"] = throughput(state, tiny, args.jobs)
        print(f"1 node: {results['one']:.2f} jobs/s", flush=True)
        stop_nodes(procs, client, ["dev2"], state)
        procs, urls = start_nodes(state, tmp, ["dev3"], env, [])
        running += procs
        results["worker"] = protocol_tax(client, tiny, prompt, params, args.worker_reps or args.reps, urls[0])
        print(f"worker node: {results['worker']}", flush=True)
        stop_nodes(procs, client, ["dev3"], state)
        # 3. jobs/s through three nodes (requesters: dev0-1, dev5-7; dev2-3 are unbonding)
        procs, urls = start_nodes(state, tmp, ["dev4", "dev8", "dev9"], env, ["--in-process"])
        running += procs
        results["three"] = throughput(state, tiny, args.jobs)
        client.close()
    finally:
        for proc in running:
            if proc.poll() is None:
                proc.terminate()
        for proc in running:
            proc.wait(timeout=30)
        devnet.down(state)
    for kind in ("in-process", "worker"):
        assert results[kind]["root"] == local_root, "network result differs from the local run"
    report = render(args, tokens, local, results)
    print(report)
    if args.out:
        args.out.write_text(report)


def render(args: argparse.Namespace, tokens: int, local: float, results: dict) -> str:
    load = os.getloadavg()[0]
    steps = [("post", "post (escrow + provider draw, 1 tx)"), ("upload", "upload spec + input (signed HTTP)"),
             ("runtime", "node: run the job"), ("commit", "node: commit tx"), ("reveal", "node: reveal tx"),
             ("reveal_seen", "requester sees the reveal (poll)"), ("fetch", "result fetch + root check (signed HTTP)"),
             ("total", "**total**")]  # fmt: skip
    ip, wk = results["in-process"], results["worker"]
    rows = "\n".join(f"| {name} | {ip[k] * 1000:.0f} ms | {wk[k] * 1000:.0f} ms |" for k, name in steps)

    def tax(r: dict) -> str:
        return (f"{r['total']:.3f} s against {r['local']:.3f} s locally: {100 * r['tax']:+.1f} % "
                f"(the protocol's steps alone: {100 * r['steps_tax']:.1f} %)")

    return f"""# bench: the network (protocol tax, jobs/s)

Command: `.venv/bin/python bench/bench_network.py --reps {args.reps} --worker-reps {args.worker_reps or args.reps} --jobs {args.jobs}`
Machine: {machine()}; shared by anvil, the node processes and the requester (and,
when this ran, by other work: 1-minute load average {load:.1f}).

## Protocol tax: a ~1 s job (tiny decoder, {tokens} tokens, audit(0), one node)

| | seconds |
|---|---|
| local `run_job`, warm (what `verimesh run` does after start-up), sizing run | {local:.3f} |
| network, node runs jobs in-process (`--in-process`) | {tax(ip)} |
| network, node runs jobs in its capped worker subprocess (default) | {tax(wk)} |

Each network job is paired with a local run of the same job just before it; the
percentages are medians over the pairs of (network - local) / local, and "the protocol's
steps" leave out the node's run of the job (everything but that row below).

Where the network time goes (medians of {args.reps} jobs in-process, {args.worker_reps or args.reps}
through the worker, each after one warm-up job):

| step | in-process | worker |
|---|---|---|
{rows}

## Throughput (tiny decoder, 8 tokens, replicate(1), 4 requester accounts in parallel, in-process nodes)

| nodes | jobs/s |
|---|---|
| 1 | {results["one"]:.2f} |
| 3 | {results["three"]:.2f} |
"""


if __name__ == "__main__":
    main()
