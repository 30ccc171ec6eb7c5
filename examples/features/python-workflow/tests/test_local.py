"""Local tests of the data pipeline's tasks: call them directly, no server, no package build.

``fetch-data`` is tested against a real HTTP server on localhost (``http.server`` in a thread),
the other tasks on plain dicts and on ``cloaca.Context``.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from data_pipeline.tasks import (
    aggregate_data,
    fetch_data,
    generate_report,
    validate_data,
)

from cloaca import Context

RECORDS = [
    {"id": 1, "name": "alpha", "value": 10.5},
    {"id": 2, "name": "beta", "value": 20.0},
    {"id": "three", "name": "gamma", "value": 1.0},
    {"id": 4, "name": "delta", "value": 4.5},
    {"id": 5, "name": "epsilon"},
]


class _Handler(BaseHTTPRequestHandler):
    payloads: dict[str, Any] = {"/data": RECORDS, "/object": {"not": "a list"}}
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        if self.path not in self.payloads:
            self.send_error(404)
            return
        body = json.dumps(self.payloads[self.path]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


async def test_fetch_data_gets_the_json_list(server: str) -> None:
    context = await fetch_data({"api_url": f"{server}/data"})
    assert context["raw_data"] == RECORDS
    assert context["fetch_timestamp"].endswith("+00:00")


async def test_fetch_data_keeps_given_data_and_makes_no_request(server: str) -> None:
    _Handler.hits.clear()
    given = [{"id": 9, "name": "given", "value": 1.0}]
    context = await fetch_data({"api_url": f"{server}/data", "raw_data": given})
    assert context["raw_data"] == given
    assert _Handler.hits == []


async def test_fetch_data_fails_on_http_errors_and_non_lists(server: str) -> None:
    import httpx

    with pytest.raises(httpx.HTTPStatusError):
        await fetch_data({"api_url": f"{server}/missing"})
    with pytest.raises(ValueError, match="expected a JSON list"):
        await fetch_data({"api_url": f"{server}/object"})


def test_validate_data_splits_good_records_from_errors() -> None:
    context = validate_data({"raw_data": RECORDS})
    assert [r["id"] for r in context["validated_records"]] == [1, 2, 4]
    errors = context["validation_errors"]
    assert len(errors) == 2
    assert errors[0].startswith("Record 3: id")
    assert errors[1].startswith("Record 5: value")


def test_aggregate_data() -> None:
    records = [{"id": 1, "name": "a", "value": 2.0}, {"id": 2, "name": "b", "value": 6.0}]
    agg = aggregate_data({"validated_records": records})["aggregations"]
    assert agg == {"count": 2, "sum": 8.0, "avg": 4.0, "min": 2.0, "max": 6.0}


def test_aggregate_data_with_no_records_gives_zeros() -> None:
    agg = aggregate_data({"validated_records": []})["aggregations"]
    assert agg == {"count": 0, "sum": 0.0, "avg": 0.0, "min": 0.0, "max": 0.0}


def test_generate_report_lists_at_most_five_errors() -> None:
    errors = [f"Record {i}: bad" for i in range(1, 8)]
    context = generate_report(
        {
            "aggregations": {"count": 3, "sum": 6.0, "avg": 2.0, "min": 1.0, "max": 3.0},
            "validation_errors": errors,
        }
    )
    report = context["report"]
    assert report.startswith("=== Data Pipeline Report ===")
    assert "Records processed: 3" in report
    assert report.splitlines()[1:6] == [
        "Records processed: 3",
        "Sum: 6.00",
        "Average: 2.00",
        "Range: 1.00 - 3.00",
        "Validation errors: 7",
    ]
    assert report.splitlines()[6:] == [f"  - Record {i}: bad" for i in range(1, 6)]


def test_generate_report_without_errors_has_no_error_section() -> None:
    context = generate_report(
        {"aggregations": {"count": 1, "sum": 2.0, "avg": 2.0, "min": 2.0, "max": 2.0}}
    )
    assert "Validation errors" not in context["report"]
    assert context["report"].splitlines()[-1] == "Range: 2.00 - 2.00"


async def test_whole_pipeline_on_a_cloaca_context(server: str) -> None:
    context = await fetch_data(Context({"api_url": f"{server}/data"}))
    for step in (validate_data, aggregate_data, generate_report):
        context = step(context)
    assert context["aggregations"]["count"] == 3
    assert "Records processed: 3" in context["report"]
    assert "Record 3:" in context["report"]
    json.dumps(context.to_dict())  # everything stored is plain JSON
