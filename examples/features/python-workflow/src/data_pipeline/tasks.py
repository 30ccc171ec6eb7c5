"""The four tasks of the data pipeline: fetch -> validate -> aggregate -> report.

Each task takes the workflow context (a ``cloaca.Context`` or, in local tests, a plain dict), reads
what earlier tasks stored, and stores its own results under new keys. Everything stored is plain
JSON, so the context can be persisted and sent between processes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from cloaca import task


class DataRecord(BaseModel):
    """One record of the input data set."""

    id: int
    name: str
    value: float


@task(id="fetch-data", retry_attempts=3, timeout_seconds=30)
async def fetch_data(context: Any) -> Any:
    """Fetch the raw records (a JSON list) from ``context["api_url"]`` into ``raw_data``.

    When ``raw_data`` is already in the context it is kept and no request is made, so the
    whole workflow can run offline on data given by the caller.
    """
    if context.get("raw_data") is None:
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.get(context["api_url"])
            response.raise_for_status()
            data = response.json()
        if not isinstance(data, list):
            raise ValueError(
                f"expected a JSON list from {context['api_url']}, got {type(data).__name__}"
            )
        context["raw_data"] = data
    context["fetch_timestamp"] = datetime.now(UTC).isoformat()
    return context


@task(id="validate-data", dependencies=["fetch-data"])
def validate_data(context: Any) -> Any:
    """Parse each raw record into a :class:`DataRecord`; keep the good ones and the errors."""
    validated: list[dict[str, Any]] = []
    errors: list[str] = []
    for index, raw in enumerate(context["raw_data"], start=1):
        try:
            validated.append(DataRecord.model_validate(raw).model_dump())
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'record'}: {err['msg']}"
                for err in exc.errors()
            )
            errors.append(f"Record {index}: {problems}")
    context["validated_records"] = validated
    context["validation_errors"] = errors
    return context


@task(id="aggregate-data", dependencies=["validate-data"])
def aggregate_data(context: Any) -> Any:
    """Compute count, sum, avg, min and max of the validated values (zeros for no records)."""
    values = [record["value"] for record in context["validated_records"]]
    count = len(values)
    total = float(sum(values))
    context["aggregations"] = {
        "count": count,
        "sum": total,
        "avg": total / count if count else 0.0,
        "min": float(min(values)) if values else 0.0,
        "max": float(max(values)) if values else 0.0,
    }
    return context


@task(id="generate-report", dependencies=["aggregate-data"])
def generate_report(context: Any) -> Any:
    """Write the seed's text report into ``report``.

    ``Records processed: N``, ``Sum: ...``, ``Average: ...``, ``Range: min - max``; when records
    failed validation, ``Validation errors: N`` followed by the first five of them.
    """
    agg = context["aggregations"]
    errors = context.get("validation_errors") or []
    lines = [
        "=== Data Pipeline Report ===",
        f"Records processed: {agg['count']}",
        f"Sum: {agg['sum']:.2f}",
        f"Average: {agg['avg']:.2f}",
        f"Range: {agg['min']:.2f} - {agg['max']:.2f}",
    ]
    if errors:
        lines.append(f"Validation errors: {len(errors)}")
        lines.extend(f"  - {error}" for error in errors[:5])
    context["report"] = "\n".join(lines)
    return context
