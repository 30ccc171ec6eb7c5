"""``docs/manifest.schema.json`` is generated from the manifest model and must stay current."""

from __future__ import annotations

import json
from pathlib import Path

from cloaca.packaging.manifest import json_schema

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "manifest.schema.json"


def test_checked_in_schema_matches_the_model() -> None:
    assert json.loads(SCHEMA.read_text()) == json_schema(), (
        "docs/manifest.schema.json is stale; regenerate it with "
        "`python -m cloaca.packaging.manifest > docs/manifest.schema.json`"
    )
