"""The node's adversaries compute for real: every provider cheat that changes the computation
gives another result than the honest node, its trace is the consistent lie a real cheat
would commit to (every op but the tampered ones recomputes exactly from its inputs), and a
re-run for dispute evidence reproduces the committed trace. Honest and cheating runs agree
across configurations (in-process, worker on 1 or 2 BLAS threads, reference path), so
configuration never makes an honest node look like a cheat.
"""

from __future__ import annotations

import pytest

from verimesh.chain.op_check_spec import checkable
from verimesh.node.execute import InProcessExecutor, WorkerExecutor, job_trace
from verimesh.node.jobs import make_spec
from verimesh.runtime import verify_record
from verimesh.runtime.trace import Trace
from verimesh.verify.adversary import PROVIDER_BEHAVIOURS, Behaviour

PARAMS = {"max_tokens": 3, "seed": 5}
PROMPT = "ROMEO:"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    from verimesh.models.api import import_model
    from verimesh.models.store import ModelStore

    home = tmp_path_factory.mktemp("adversary") / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("VERIMESH_HOME", str(home))  # worker children inherit it: same model store
    root = "0x" + import_model("tiny-shakespeare", ModelStore(home / "models")).hex()
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def job(tiny: str):
    return make_spec(tiny, "generate", PROMPT, PARAMS)


@pytest.fixture(scope="module")
def honest(job) -> tuple:
    spec, data = job
    return InProcessExecutor().run(spec, data), job_trace(spec, data)


def _inconsistent_leaves(trace: Trace) -> list[tuple[int, int]]:
    """Positions of ops whose recorded output is not what their recorded inputs give."""
    return [(r.step, r.index) for r in trace.records() if not verify_record(r)]


# behaviour -> ops whose output is a lie (None: the ops are right, the PROGRAM is not the job's)
TAMPERED_OPS = {
    Behaviour.ONE_BAD_OP: 1,
    Behaviour.ONE_BAD_SMALL_OP: 1,
    Behaviour.WRONG_OUTPUT: PARAMS["max_tokens"],  # the chosen token of every step
    Behaviour.MODEL_SWAP: 0,
    Behaviour.SKIP_LAYERS: 0,
    Behaviour.LOWER_PRECISION: 0,
    Behaviour.LOWER_PRECISION_LATE: 0,
}


@pytest.mark.parametrize("behaviour", list(TAMPERED_OPS), ids=lambda b: b.value)
def test_cheat_computes_a_consistent_lie(job, honest, behaviour: Behaviour) -> None:
    spec, data = job
    good, good_trace = honest
    cheat = InProcessExecutor(behaviour).run(spec, data)
    assert cheat.trace_root != good.trace_root
    trace = InProcessExecutor(behaviour).trace(spec, data)
    assert trace.root == cheat.trace_root  # its dispute evidence proves what it committed to
    assert len(_inconsistent_leaves(trace)) == TAMPERED_OPS[behaviour]
    first = next(i for i, (a, b) in enumerate(zip(good_trace.records(), trace.records(), strict=False))
                 if a.leaf_hash() != b.leaf_hash())  # fmt: skip
    if behaviour in (Behaviour.ONE_BAD_OP, Behaviour.ONE_BAD_SMALL_OP):  # the only lie, from the middle on:
        small = behaviour is Behaviour.ONE_BAD_SMALL_OP  # at the first op the EVM can (or cannot) recompute
        middle = good_trace.op_count // 2
        assert first >= middle and _inconsistent_leaves(trace) == [trace.position(first)]
        assert checkable(trace.leaf(*trace.position(first))) is small
        assert all(checkable(r) is not small for r in good_trace.records()[middle:first])
    if behaviour is Behaviour.LOWER_PRECISION_LATE:  # honest until its last step
        assert trace.position(first)[0] == len(good_trace.steps) - 1 > 0
    if behaviour is Behaviour.WRONG_OUTPUT:  # the answer itself is another one
        assert cheat.output_root != good.output_root and cheat.output != good.output


def test_smaller_model_and_skipped_layer_do_less_work(job, honest) -> None:
    spec, data = job
    _, good_trace = honest
    swapped = InProcessExecutor(Behaviour.MODEL_SWAP).trace(spec, data)
    skipped = InProcessExecutor(Behaviour.SKIP_LAYERS).trace(spec, data)
    assert swapped.op_count < skipped.op_count < good_trace.op_count


def test_random_output_computes_nothing_and_fabricates_a_trace(job, honest) -> None:
    spec, data = job
    good, good_trace = honest
    cheat = InProcessExecutor(Behaviour.RANDOM_OUTPUT).run(spec, data)
    assert cheat.output_root != good.output_root and cheat.trace_root != good.trace_root
    assert len(cheat.output) == PARAMS["max_tokens"]  # an answer of the asked shape
    trace = InProcessExecutor(Behaviour.RANDOM_OUTPUT).trace(spec, data)
    assert trace.root == cheat.trace_root  # deterministic per job: it can play the game
    assert cheat.step_roots == tuple(trace.step_roots)  # and publishes the fabricated steps
    assert good_trace.records()[0].leaf_hash() != trace.records()[0].leaf_hash()
    other, _ = make_spec(spec.model_root, "generate", "JULIET:", PARAMS)
    assert InProcessExecutor(Behaviour.RANDOM_OUTPUT).trace(other, data).root != trace.root


@pytest.mark.parametrize(
    "behaviour", [*sorted(b for b in PROVIDER_BEHAVIOURS if not b.computes_wrong), Behaviour.HONEST], ids=lambda b: b.value
)
def test_protocol_cheats_compute_honestly(job, honest, behaviour: Behaviour) -> None:
    """copy-replica and withhold-reveal cheat in the daemon (tests/zoo), not in the runtime."""
    spec, data = job
    assert InProcessExecutor(behaviour).run(spec, data).trace_root == honest[0].trace_root


@pytest.mark.slow
@pytest.mark.parametrize("behaviour", [Behaviour.HONEST, Behaviour.ONE_BAD_OP], ids=lambda b: b.value)
def test_results_agree_across_configurations(job, honest, behaviour: Behaviour) -> None:
    """In-process, worker child on 1 and on 2 BLAS threads, and the runtime's reference path:
    the same bytes. (An honest node never disagrees with an honest node; a cheat can always
    reproduce its own lie for its dispute evidence.)"""
    from verimesh.models.api import load_model
    from verimesh.node.config import ResourceCaps
    from verimesh.verify.adversary import OneBadOpContext
    from verimesh.verify.replay import JobRun

    spec, data = job
    expected = InProcessExecutor(behaviour).run(spec, data)
    for cores in (1, 2):
        executor = WorkerExecutor(ResourceCaps(cores=cores, memory_mb=1024, nice=0), behaviour=behaviour)
        got = executor.run(spec, data)
        assert (got.output_bytes, got.output_root, got.trace_root) == (
            expected.output_bytes, expected.output_root, expected.trace_root,
        ), f"worker on {cores} cores"  # fmt: skip
    run = JobRun(load_model(spec.model_root, auto_import=False), "generate", PROMPT, dict(PARAMS))
    if behaviour is Behaviour.HONEST:
        from verimesh.runtime import ExecutionContext

        ctx = ExecutionContext(path="reference")
    else:
        ctx = OneBadOpContext(honest[1].op_count // 2, small=False, path="reference")
    assert run.trace(ctx).root == expected.trace_root


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("false-verdict", "validator behaviour: use `verimesh validator run --adversary`"),
        ("lazy", "Input should be 'honest', 'wrong-output'"),
    ],
)
def test_node_run_refuses_an_unknown_or_validator_adversary(tmp_path, name: str, message: str) -> None:
    from typer.testing import CliRunner

    from verimesh.cli.node import app

    result = CliRunner().invoke(app, ["run", "--home", str(tmp_path), "--dev", "dev2", "--adversary", name])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "journal.sqlite").exists()  # refused before touching anything


def test_status_shows_the_adversary_locally(tmp_path) -> None:
    """`verimesh node status` (local, the owner's) names the behaviour; /v1/info never does
    (checked against a running cheat in tests/zoo/test_zoo_replicate.py)."""
    from rich.console import Console

    from verimesh.node.status import DeviceReporter, render_status

    DeviceReporter(tmp_path, None, InProcessExecutor(Behaviour.SKIP_LAYERS), None).write()
    console = Console(width=120, record=True)
    console.print(render_status(tmp_path, 0.1))
    text = console.export_text()
    assert "ADVERSARY" in text and "skip-layers" in text
    DeviceReporter(tmp_path, None, InProcessExecutor(), None).write()
    console = Console(width=120, record=True)
    console.print(render_status(tmp_path, 0.1))
    assert "ADVERSARY" not in console.export_text()
