import datetime
import json
import pickle

import pytest

from cloaca import Context
from cloaca.errors import ContextError, ContextValueError


def test_dict_style_access():
    ctx = Context({"a": 1})
    ctx["b"] = [1, 2, {"c": None}]
    assert ctx["a"] == 1 and "b" in ctx and len(ctx) == 2
    assert list(ctx) == ["a", "b"]
    assert dict(ctx.items()) == {"a": 1, "b": [1, 2, {"c": None}]}
    assert list(ctx.keys()) == ["a", "b"] and list(ctx.values())[0] == 1
    del ctx["a"]
    assert "a" not in ctx
    with pytest.raises(KeyError):
        del ctx["a"]
    with pytest.raises(KeyError):
        ctx["nope"]


def test_cloaca_methods():
    ctx = Context()
    ctx.insert("k", 1)
    with pytest.raises(ValueError, match="already exists"):
        ctx.insert("k", 2)
    ctx.update("k", 3)
    assert ctx.get("k") == 3 and ctx.get("zz", "d") == "d"
    with pytest.raises(KeyError, match="does not exist"):
        ctx.update("absent", 1)
    ctx.set("k", 4)
    assert ctx.remove("k") == 4 and ctx.remove("k") is None
    ctx.update_from_dict({"x": 1.5, "y": "s"})
    assert ctx.to_dict() == {"x": 1.5, "y": "s"}


def test_json_round_trip():
    ctx = Context({"a": [1, {"b": True}], "n": None})
    again = Context.from_json(ctx.to_json())
    assert again == ctx and json.loads(ctx.to_json()) == ctx.to_dict()
    with pytest.raises(ContextError, match="JSON object"):
        Context.from_json("[1, 2]")


@pytest.mark.parametrize(
    "value", [datetime.datetime(2024, 1, 1), {1, 2}, object(), {"ok": [b"bytes"]}, float("nan")]
)
def test_non_json_value_names_the_key(value):
    ctx = Context()
    with pytest.raises(ContextValueError) as info:
        ctx["when"] = value
    assert info.value.key == "when"
    assert "'when'" in str(info.value) and "JSON" in str(info.value)
    assert isinstance(info.value, TypeError)
    assert "when" not in ctx


def test_non_str_key_rejected():
    with pytest.raises(ContextError, match="keys must be str"):
        Context().set(1, "x")  # type: ignore[arg-type]


def test_constructor_checks_values():
    with pytest.raises(ContextValueError, match="'bad'"):
        Context({"ok": 1, "bad": object()})


def test_error_pickles():
    err = ContextValueError(key="k", value_type="set")
    again = pickle.loads(pickle.dumps(err))
    assert again.key == "k" and str(again) == str(err)
