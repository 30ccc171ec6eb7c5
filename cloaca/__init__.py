"""cloaca: the workflow engine behind cloaca-nb.

The authoring API (``task``, ``Context``, ``WorkflowBuilder`` ...) is Cloacina's Python API, so
code written for Cloacina's bindings runs here unchanged. Heavy parts (the durable runner, the
package builder, the loader) are imported lazily on first use to keep ``import cloaca`` fast.
"""

from __future__ import annotations

from cloaca._lazy import lazy_getattr
from cloaca.conditions import all_of, any_of, context_value, none_of
from cloaca.context import Context
from cloaca.errors import (
    CloacaError,
    CycleError,
    TaskExecutionError,
    UnknownDependencyError,
    WorkflowValidationError,
)
from cloaca.execution.events import TaskEvent
from cloaca.execution.result import ExecutionResult, TaskResult
from cloaca.retry import BackoffStrategy, RetryCondition, RetryPolicy, RetryPolicyBuilder
from cloaca.task import TaskHandle, TaskSpec, task
from cloaca.task_registry import GLOBAL_REGISTRY, TaskRegistry
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
    "build_package": "cloaca.packaging",
}


__getattr__ = lazy_getattr(globals(), _LAZY)


__all__ = [
    "GLOBAL_REGISTRY",
    "BackoffStrategy",
    "CloacaError",
    "Context",
    "CycleError",
    "DefaultRunner",
    "DefaultRunnerConfig",
    "ExecutionResult",
    "RetryCondition",
    "RetryPolicy",
    "RetryPolicyBuilder",
    "TaskEvent",
    "TaskExecutionError",
    "TaskHandle",
    "TaskRegistry",
    "TaskResult",
    "TaskSpec",
    "TriggerResult",
    "UnknownDependencyError",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowValidationError",
    "all_of",
    "any_of",
    "build_package",
    "context_value",
    "get_workflow",
    "list_workflows",
    "none_of",
    "register_workflow",
    "register_workflow_constructor",
    "task",
    "trigger",
]
