"""Property tests: random DAGs execute every task exactly once, after all of its dependencies."""

import asyncio
import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloaca import WorkflowBuilder, task


@st.composite
def dags(draw):
    n = draw(st.integers(min_value=1, max_value=25))
    deps = {}
    for i in range(n):
        if i == 0:
            deps[i] = []
        else:
            deps[i] = sorted(set(draw(st.lists(st.integers(0, i - 1), max_size=4))))
    kinds = draw(st.lists(st.sampled_from(["sync", "async"]), min_size=n, max_size=n))
    concurrency = draw(st.integers(min_value=1, max_value=6))
    return deps, kinds, concurrency


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags())
def test_random_dags_run_each_task_once_after_its_dependencies(spec):
    deps, kinds, concurrency = spec
    log: list[int] = []
    lock = threading.Lock()

    def make(i):
        def record(ctx):
            with lock:
                log.append(i)
            ctx[f"t{i}"] = [f"t{d}" in ctx for d in deps[i]]

        if kinds[i] == "async":

            async def fn(ctx):
                await asyncio.sleep(0)
                record(ctx)

        else:

            def fn(ctx):
                record(ctx)

        return task(id=f"t{i}", dependencies=[f"t{d}" for d in deps[i]])(fn)

    builder = WorkflowBuilder("prop")
    for i in reversed(range(len(deps))):  # declaration order must not matter
        builder.add_task(make(i))
    result = builder.build().run(max_concurrency=concurrency)

    assert result.status == "Completed"
    assert sorted(log) == list(range(len(deps)))  # every task exactly once
    position = {t: k for k, t in enumerate(log)}
    for i, ds in deps.items():
        assert all(position[d] < position[i] for d in ds)
        # every upstream write (direct or transitive) is visible to the task
        assert result.final_context[f"t{i}"] == [True] * len(ds)
