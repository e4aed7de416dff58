"""Real models in the exact runtime: canonical bundles, the local store, importers, forwards.

Start with ``verimesh.models.api``: ``load_model(name_or_root)`` and ``run_job(...)``.
"""
