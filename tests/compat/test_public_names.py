"""Every one of upstream ``cloaca``'s 47 public names imports from our ``cloaca``.

The list is upstream's Python API reference: the authoring surface, the wheel-only host surface
and the four decorator classes the decorators return.
"""

from __future__ import annotations

import importlib

import pytest

AUTHORING = [
    "Context", "task", "TaskHandle", "constructor",
    "context_value", "task_success", "task_failed", "task_skipped",
    "all_of", "any_of", "none_of", "always",
    "trigger", "TriggerResult", "reactor",
    "WorkflowBuilder", "Workflow", "register_workflow_constructor",
    "workflow_params", "workflow_secrets", "boundary_schema",
    "TaskNamespace", "WorkflowContext",
    "RetryPolicy", "RetryPolicyBuilder", "BackoffStrategy", "RetryCondition",
    "ComputationGraphBuilder", "node",
    "passthrough_accumulator", "stream_accumulator", "polling_accumulator",
    "batch_accumulator", "state_accumulator",
    "var", "var_or",
]  # fmt: skip
HOST = [
    "DefaultRunner", "WorkflowResult", "DefaultRunnerConfig", "_shutdown_all_runners",
    "DatabaseAdmin", "TenantConfig", "TenantCredentials",
]  # fmt: skip
DECORATOR_CLASSES = [
    "TaskDecorator", "TriggerDecorator", "WorkflowParamsDecorator", "WorkflowSecretsDecorator",
]  # fmt: skip
UPSTREAM_NAMES = AUTHORING + HOST + DECORATOR_CLASSES


def test_the_list_is_upstreams_47_distinct_names() -> None:
    assert len(UPSTREAM_NAMES) == len(set(UPSTREAM_NAMES)) == 47


@pytest.mark.parametrize("name", UPSTREAM_NAMES)
def test_name_imports_from_cloaca(name: str) -> None:
    module = importlib.import_module("cloaca")
    value = getattr(module, name)
    assert value is not None
    namespace: dict[str, object] = {}
    exec(f"from cloaca import {name}", namespace)  # the form user code writes
    assert namespace[name] is value


def test_public_names_other_than_the_private_one_are_in_all() -> None:
    import cloaca

    missing = [n for n in UPSTREAM_NAMES if not n.startswith("_") and n not in cloaca.__all__]
    assert missing == []
