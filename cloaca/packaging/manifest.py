"""The manifest v2 model: the one definition of ``manifest.json`` shared by builder and loader.

``docs/manifest.schema.json`` is generated from :class:`Manifest` (``python -m
cloaca.packaging.manifest > docs/manifest.schema.json``) and a test checks it is current.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from cloaca.conditions import OPERATORS
from cloaca.errors import ManifestError

TASK_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,128}$"
DEPENDENCY_PATTERN = r"^(?:[A-Za-z0-9_.\-]{1,214}::)?[A-Za-z0-9_.\-]{1,128}$"
FORMAT_VERSION = "2"
#: ``"package.module:function"`` (a dotted attribute path after the colon is allowed)
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
REF_PATTERN = rf"^{_DOTTED}:{_DOTTED}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class PackageInfo(_Strict):
    """``package``: identity of the package."""

    name: str = Field(min_length=1, max_length=214, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
    version: str = Field(min_length=1)
    description: str | None = None
    fingerprint: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    targets: list[str] = Field(min_length=1)


class VendoredWheel(_Strict):
    """One wheel installed in ``vendor/``: its distribution name, version and wheel tags (the
    ``Tag:`` lines of its ``WHEEL`` file, e.g. ``cp312-cp312-manylinux_2_17_x86_64``)."""

    name: str = Field(min_length=1)
    version: str
    tags: list[str]


_PYTHON_OPTIONAL = ("python_version", "abi", "wheels")


class PythonInfo(_Strict):
    """``python``: how to import a Python package's tasks, and which Python its vendored set
    was resolved and installed for (``python_version`` ``"3.12"``, ``abi`` ``"cp312"``, and the
    tags of every vendored wheel). Manifests written before these existed omit them."""

    requires_python: str | None = None
    entry_module: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
    python_version: str | None = Field(default=None, pattern=r"^3\.\d{1,2}$")
    abi: str | None = Field(default=None, pattern=r"^cp3\d{1,2}$")
    wheels: list[VendoredWheel] | None = None

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        for key in _PYTHON_OPTIONAL:
            if out.get(key) is None:
                out.pop(key, None)
        return out

    @model_validator(mode="after")
    def _check_abi(self) -> PythonInfo:
        if self.abi is not None and self.python_version is None:
            raise ValueError("abi is given without python_version")
        if self.abi is not None and self.python_version is not None:
            expected = "cp" + self.python_version.replace(".", "")
            if self.abi != expected:
                raise ValueError(
                    f"abi {self.abi!r} does not match python_version {self.python_version!r} "
                    f"(expected {expected!r})"
                )
        return self


class RustInfo(_Strict):
    """``rust``: where the compiled library is inside the archive."""

    library_path: str = Field(min_length=1)


class RetryConditionEntry(_Strict):
    """``retry.condition``: which failures are retried.

    ``kind`` is ``all``, ``never``, ``transient``, ``patterns`` (``values``: substrings of the
    error message) or ``error_types`` (``values``: exception type names).
    """

    kind: Literal["all", "never", "transient", "patterns", "error_types"] = "all"
    values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_values(self) -> RetryConditionEntry:
        if self.kind in ("patterns", "error_types") and not self.values:
            raise ValueError(f"retry condition {self.kind!r} needs a non-empty 'values' list")
        if self.kind not in ("patterns", "error_types") and self.values:
            raise ValueError(f"retry condition {self.kind!r} takes no 'values'")
        return self


class RetryEntry(_Strict):
    """``retry``: the whole retry policy (absent: one attempt, or ``retries`` + 1 attempts with
    the engine's default delays). Fields default to the engine's ``RetryPolicy`` defaults.
    ``multiplier`` is the linear multiplier or the exponential base; ``scale`` the exponential
    multiplier (``BackoffStrategy.exponential(base, multiplier)``)."""

    max_attempts: int = Field(default=3, ge=1)
    backoff: Literal["fixed", "linear", "exponential"] = "exponential"
    initial_delay_seconds: float = Field(default=1.0, ge=0)
    max_delay_seconds: float = Field(default=60.0, ge=0)
    multiplier: float = Field(default=2.0, ge=0)
    scale: float = Field(default=1.0, ge=0)
    jitter: bool = True
    condition: RetryConditionEntry = Field(default_factory=RetryConditionEntry)


class ContextValueRule(_Strict):
    """A trigger rule on one context value: ``context_value(key, op, value)``."""

    type: Literal["context_value"]
    key: str
    op: Literal[OPERATORS]  # type: ignore[valid-type]
    value: Any = None


class CombinedRule(_Strict):
    """``all_of`` / ``any_of`` / ``none_of`` over nested rules."""

    type: Literal["all_of", "any_of", "none_of"]
    conditions: list[TriggerRule]


class TaskStateRule(_Strict):
    """A trigger rule on how a dependency ended: ``task_success/task_failed/task_skipped(id)``."""

    type: Literal["task_success", "task_failed", "task_skipped"]
    task_id: str = Field(min_length=1)


class AlwaysRule(_Strict):
    """``always()``: the rule that always holds."""

    type: Literal["always"]


TriggerRule = Annotated[
    ContextValueRule | TaskStateRule | AlwaysRule | CombinedRule, Field(discriminator="type")
]


_OPTIONAL_BEHAVIOUR = ("retry", "trigger_rules", "on_success", "on_failure")


class TaskEntry(_Strict):
    """One task of the package (see "Task behaviour travels whole" in the package format)."""

    id: str = Field(pattern=TASK_ID_PATTERN)
    function: str = Field(min_length=1)
    dependencies: list[str] = Field(default_factory=list)
    description: str | None = None
    retries: int = Field(default=0, ge=0)
    timeout_seconds: float | None = Field(default=None, gt=0)
    retry: RetryEntry | None = None
    trigger_rules: TriggerRule | None = None
    on_success: str | None = Field(default=None, pattern=REF_PATTERN)
    on_failure: str | None = Field(default=None, pattern=REF_PATTERN)

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # the behaviour fields are optional: absent means the engine's default, so a task that
        # declares none of them is written exactly as before they existed
        out: dict[str, Any] = handler(self)
        for key in _OPTIONAL_BEHAVIOUR:
            if out.get(key) is None:
                out.pop(key, None)
        return out

    @model_validator(mode="after")
    def _check_entry(self) -> TaskEntry:
        for dep in self.dependencies:
            if not re.fullmatch(DEPENDENCY_PATTERN, dep):  # re's "$" also matches before "\n"
                raise ValueError(f"dependency {dep!r} of task {self.id!r} is not a valid task id")
        if self.retry is not None and self.retries != self.retry.max_attempts - 1:
            raise ValueError(
                f"task {self.id!r}: retries ({self.retries}) and retry.max_attempts "
                f"({self.retry.max_attempts}) disagree; retries must be max_attempts - 1"
            )
        return self


class Manifest(_Strict):
    """``manifest.json``, format version 2 (see ``shared/spec/package-format.md``)."""

    format_version: Literal["2"]
    package: PackageInfo
    language: Literal["python", "rust"]
    python: PythonInfo | None = None
    rust: RustInfo | None = None
    tasks: list[TaskEntry]
    created_at: str = Field(
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
    )
    signature: str | None = None

    @model_validator(mode="after")
    def _check_language(self) -> Manifest:
        if self.language == "python" and self.python is None:
            raise ValueError("language is 'python' but the 'python' section is missing")
        if self.language == "rust" and self.rust is None:
            raise ValueError("language is 'rust' but the 'rust' section is missing")
        # one pass: list.count per id made a 60k-task manifest take ~50 s
        dupes = sorted(i for i, n in Counter(t.id for t in self.tasks).items() if n > 1)
        if dupes:
            raise ValueError(f"duplicate task ids: {dupes}")
        return self

    def to_json(self) -> str:
        """Serialise deterministically (sorted keys, 2-space indent, trailing newline)."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


def parse_manifest(raw: bytes | str | dict[str, Any], path: str | None = None) -> Manifest:
    """Parse and validate a manifest, raising :class:`ManifestError` naming the first bad field.

    Unknown top-level fields get a close-match hint; a ``format_version`` other than ``"2"``
    is refused with its own message.
    """
    if isinstance(raw, bytes | str):
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            # JSONDecodeError, UnicodeDecodeError, an integer over sys.get_int_max_str_digits()
            # (a plain ValueError) or nesting deeper than the recursion limit
            raise ManifestError(f"not valid JSON ({type(exc).__name__}: {exc})", path=path) from exc
    else:
        data = raw
    if not isinstance(data, dict):
        raise ManifestError("must be a JSON object", path=path)
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ManifestError(
            f'unsupported format_version {version!r}; this loader reads format_version "2" '
            "only. Rebuild the package with a current `cloaca build`.",
            path=path,
            field="format_version",
        )
    known = set(Manifest.model_fields)
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ManifestError(f"unknown field.{hint}", path=path, field=key)
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        # an unknown task-level field gets the same close-match hint as a top-level one
        err = exc.errors()[0]
        if err["type"] == "extra_forbidden" and len(err["loc"]) == 3 and err["loc"][0] == "tasks":
            key = str(err["loc"][2])
            close = difflib.get_close_matches(key, sorted(TaskEntry.model_fields), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            field = ".".join(str(p) for p in err["loc"])
            raise ManifestError(f"unknown task field.{hint}", path=path, field=field) from exc
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ManifestError(err["msg"], path=path, field=loc or None) from exc


def json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`Manifest` (written to ``docs/manifest.schema.json``)."""
    return Manifest.model_json_schema()


if __name__ == "__main__":  # pragma: no cover - used to regenerate docs/manifest.schema.json
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
