"""cloaca: the workflow engine behind cloaca-nb.

The authoring API (``task``, ``Context``, ``WorkflowBuilder`` ...) is Cloacina's Python API, so
code written for Cloacina's bindings runs here unchanged. Heavy parts (the durable runner, the
package builder, the loader) are imported lazily on first use to keep ``import cloaca`` fast.
"""

from __future__ import annotations

from cloaca._lazy import lazy_getattr
from cloaca.conditions import (
    all_of,
    always,
    any_of,
    context_value,
    none_of,
    task_failed,
    task_skipped,
    task_success,
)
from cloaca.context import Context
from cloaca.errors import (
    CloacaError,
    CycleError,
    TaskExecutionError,
    UnknownDependencyError,
    WorkflowValidationError,
)
from cloaca.execution.events import TaskEvent
from cloaca.execution.result import ExecutionResult, TaskResult, WorkflowResult
from cloaca.namespace import TaskNamespace, WorkflowContext
from cloaca.params import WorkflowParamsDecorator, workflow_params
from cloaca.retry import BackoffStrategy, RetryCondition, RetryPolicy, RetryPolicyBuilder
from cloaca.secrets import (
    EnvSecretResolver,
    WorkflowSecretsDecorator,
    set_secret_resolver,
    workflow_secrets,
)
from cloaca.task import TaskDecorator, TaskHandle, TaskSpec, task
from cloaca.task_registry import GLOBAL_REGISTRY, TaskRegistry
from cloaca.unsupported import (
    ComputationGraphBuilder,
    batch_accumulator,
    boundary_schema,
    constructor,
    node,
    passthrough_accumulator,
    polling_accumulator,
    reactor,
    state_accumulator,
    stream_accumulator,
)
from cloaca.variables import var, var_or
from cloaca.workflow import (
    Workflow,
    WorkflowBuilder,
    get_workflow,
    list_workflows,
    register_workflow,
    register_workflow_constructor,
)

__version__ = "0.1.0"

# name -> module that defines it; imported on first attribute access (PEP 562)
_LAZY = {
    "DefaultRunner": "cloaca.runner",
    "DefaultRunnerConfig": "cloaca.runner",
    "trigger": "cloaca.runner.triggers",
    "TriggerResult": "cloaca.runner.triggers",
    "TriggerDecorator": "cloaca.runner.triggers",
    "_shutdown_all_runners": "cloaca.runner.runner",
    "DatabaseAdmin": "cloaca.storage.admin",
    "TenantConfig": "cloaca.storage.admin",
    "TenantCredentials": "cloaca.storage.admin",
    "build_package": "cloaca.packaging",
}


__getattr__ = lazy_getattr(globals(), _LAZY)


__all__ = [
    "GLOBAL_REGISTRY",
    "BackoffStrategy",
    "CloacaError",
    "ComputationGraphBuilder",
    "Context",
    "CycleError",
    "DatabaseAdmin",
    "DefaultRunner",
    "DefaultRunnerConfig",
    "EnvSecretResolver",
    "ExecutionResult",
    "RetryCondition",
    "RetryPolicy",
    "RetryPolicyBuilder",
    "TaskDecorator",
    "TaskEvent",
    "TaskExecutionError",
    "TaskHandle",
    "TaskNamespace",
    "TaskRegistry",
    "TaskResult",
    "TaskSpec",
    "TenantConfig",
    "TenantCredentials",
    "TriggerDecorator",
    "TriggerResult",
    "UnknownDependencyError",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowContext",
    "WorkflowParamsDecorator",
    "WorkflowResult",
    "WorkflowSecretsDecorator",
    "WorkflowValidationError",
    "all_of",
    "always",
    "any_of",
    "batch_accumulator",
    "boundary_schema",
    "build_package",
    "constructor",
    "context_value",
    "get_workflow",
    "list_workflows",
    "node",
    "none_of",
    "passthrough_accumulator",
    "polling_accumulator",
    "reactor",
    "register_workflow",
    "register_workflow_constructor",
    "set_secret_resolver",
    "state_accumulator",
    "stream_accumulator",
    "task",
    "task_failed",
    "task_skipped",
    "task_success",
    "trigger",
    "var",
    "var_or",
    "workflow_params",
    "workflow_secrets",
]
