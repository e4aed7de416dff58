"""The requester of the end-to-end test, as its own process: submits jobs through the SDK and
prints one JSON line per verified result (job id, mode, roots, output, seconds).

    python requester.py DEPLOYMENT_JSON WALLET_DIR JOBS_JSON
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from verimesh.chain import Deployment
from verimesh.client import Client, audit, replicate
from verimesh.crypto.wallet import WalletStore


def main() -> None:
    deployment_path, wallets, jobs_json = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    deployment = Deployment.load(deployment_path)
    client = Client(deployment, WalletStore(wallets).load("dev1", deployment.dev_password or ""))
    for job in json.loads(jobs_json):
        mode = audit(job["audit"]) if "audit" in job else replicate(job["replicate"])
        started = time.perf_counter()
        handle = client.submit(model=job["model"], task=job["task"], input=job["input"],
                               params=job.get("params", {}), mode=mode)  # fmt: skip
        out = handle.result(timeout=500)
        print(json.dumps({
            "job_id": handle.job_id, "mode": str(mode), "providers": handle.providers,
            "output_root": out.output_root, "trace_root": out.trace_root,
            "output": out.output, "seconds": time.perf_counter() - started,
        }), flush=True)  # fmt: skip
    client.close()


if __name__ == "__main__":
    main()
