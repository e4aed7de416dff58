"""The provider node: HTTP API, job loop, duties journal, idle policy, worker, self-benchmark.

Start with ``verimesh node run`` (docs/node.md). ``daemon.py`` joins the network and follows
JobMarket; ``journal.py`` remembers every duty across crashes; ``api.py`` serves blobs,
results and dispute evidence; ``jobs.py`` is the job spec shared with the requester SDK.
"""
