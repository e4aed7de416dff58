import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """The shipped tiny decoder, imported into a private store once per session."""
    from verimesh.models.api import load_model
    from verimesh.models.store import ModelStore

    store = ModelStore(tmp_path_factory.mktemp("verify-home") / "models")
    return load_model("tiny-shakespeare", store=store)


@pytest.fixture(scope="session")
def minilm_model(tmp_path_factory):
    """all-MiniLM-L6-v2 from its PyPI package, imported into a private store once per session."""
    from verimesh.models.api import load_model
    from verimesh.models.store import ModelStore

    store = ModelStore(tmp_path_factory.mktemp("verify-minilm-home") / "models")
    return load_model("minilm", store=store)
