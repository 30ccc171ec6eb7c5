"""The manifest v2 model: the one definition of ``manifest.json`` shared by builder and loader.

``docs/manifest.schema.json`` is generated from :class:`Manifest` (``python -m
cloaca.packaging.manifest > docs/manifest.schema.json``) and a test checks it is current.
"""

from __future__ import annotations

import difflib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cloaca.errors import ManifestError

TASK_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,128}$"
DEPENDENCY_PATTERN = r"^(?:[A-Za-z0-9_.\-]{1,214}::)?[A-Za-z0-9_.\-]{1,128}$"
FORMAT_VERSION = "2"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PackageInfo(_Strict):
    """``package``: identity of the package."""

    name: str = Field(min_length=1, max_length=214, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
    version: str = Field(min_length=1)
    description: str | None = None
    fingerprint: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    targets: list[str] = Field(min_length=1)


class PythonInfo(_Strict):
    """``python``: how to import a Python package's tasks."""

    requires_python: str | None = None
    entry_module: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class RustInfo(_Strict):
    """``rust``: where the compiled library is inside the archive."""

    library_path: str = Field(min_length=1)


class TaskEntry(_Strict):
    """One task of the package."""

    id: str = Field(pattern=TASK_ID_PATTERN)
    function: str = Field(min_length=1)
    dependencies: list[str] = Field(default_factory=list)
    description: str | None = None
    retries: int = Field(default=0, ge=0)
    timeout_seconds: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check_dependencies(self) -> TaskEntry:
        import re

        for dep in self.dependencies:
            if not re.fullmatch(DEPENDENCY_PATTERN, dep):  # re's "$" also matches before "\n"
                raise ValueError(f"dependency {dep!r} of task {self.id!r} is not a valid task id")
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
        ids = [t.id for t in self.tasks]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
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
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ManifestError(err["msg"], path=path, field=loc or None) from exc


def json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`Manifest` (written to ``docs/manifest.schema.json``)."""
    return Manifest.model_json_schema()


if __name__ == "__main__":  # pragma: no cover - used to regenerate docs/manifest.schema.json
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
