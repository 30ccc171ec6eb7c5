"""The seed pipeline (fetch -> validate -> aggregate -> report) run in-process against a local
HTTP server standing in for the API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from cloaca import WorkflowBuilder, task

RECORDS = [
    {"id": 1, "name": "alpha", "value": 10.0},
    {"id": 2, "name": "beta", "value": 20.0},
    {"id": "x", "name": "broken", "value": "n/a"},
    {"id": 3, "name": "gamma", "value": 30.0},
]


@pytest.fixture
def api_url() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(RECORDS).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/records"
    server.shutdown()
    server.server_close()


def build_pipeline():
    @task(id="fetch-data", retry_attempts=3, retry_delay_ms=10, retry_condition="transient")
    async def fetch_data(context):
        if "raw_data" not in context:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(context["api_url"])
                response.raise_for_status()
                context["raw_data"] = response.json()
        context["fetch_timestamp"] = datetime.now(UTC).isoformat()
        return context

    @task(id="validate-data", dependencies=[fetch_data])
    def validate_data(context):
        valid, errors = [], []
        for i, rec in enumerate(context["raw_data"]):
            try:
                valid.append({"id": int(rec["id"]), "name": str(rec["name"]),
                              "value": float(rec["value"])})  # fmt: skip
            except (KeyError, TypeError, ValueError) as exc:
                errors.append(f"Record {i}: {exc}")
        context["validated_records"] = valid
        context["validation_errors"] = errors
        return context

    @task(id="aggregate-data", dependencies=["validate-data"])
    def aggregate_data(context):
        values = [r["value"] for r in context["validated_records"]]
        context["aggregations"] = {
            "count": len(values),
            "sum": sum(values),
            "avg": sum(values) / len(values) if values else 0.0,
            "min": min(values, default=0.0),
            "max": max(values, default=0.0),
        }
        return context

    @task(id="generate-report", dependencies=["aggregate-data"])
    def generate_report(context):
        agg = context["aggregations"]
        lines = ["=== Data Pipeline Report ===", f"Records processed: {agg['count']}",
                 f"Sum: {agg['sum']}", f"Average: {agg['avg']}"]  # fmt: skip
        context["report"] = "\n".join(lines + context["validation_errors"][:5])
        return context

    b = WorkflowBuilder("seed-pipeline")
    for t in (fetch_data, validate_data, aggregate_data, generate_report):
        b.add_task(t)
    return b.build()


def test_seed_pipeline_against_local_api(api_url):
    result = build_pipeline().run({"api_url": api_url})
    assert result.status == "Completed", result.error_message
    ctx = result.final_context
    assert ctx["aggregations"] == {"count": 3, "sum": 60.0, "avg": 20.0, "min": 10.0, "max": 30.0}
    assert ctx["validation_errors"] == ["Record 2: invalid literal for int() with base 10: 'x'"]
    assert "Records processed: 3" in ctx["report"]
    assert datetime.fromisoformat(ctx["fetch_timestamp"]).tzinfo is not None


def test_seed_pipeline_offline_with_raw_data():
    result = build_pipeline().run({"raw_data": RECORDS[:2]})
    assert result.final_context["aggregations"]["count"] == 2


def test_seed_pipeline_api_down_fails_fetch_and_skips_the_rest():
    result = build_pipeline().run({"api_url": "http://127.0.0.1:9/records"})
    fetch = result.tasks["fetch-data"]
    assert fetch.status == "Failed" and fetch.attempts == 3  # ConnectError is transient
    assert fetch.error.error_type == "ConnectError"
    assert [result.tasks[t].status for t in ("validate-data", "generate-report")] == ["Skipped"] * 2
