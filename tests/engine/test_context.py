import datetime
import enum
import json
import pickle

import pytest

from cloaca import Context
from cloaca.context import task_output
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


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (float("inf"), "holds inf"),
        ([1, {"x": -float("inf")}], "holds -inf"),
        ({"ok": [1, float("nan")]}, "holds nan"),
        ({"rows": [{1: "a"}]}, "dict key 1"),
        ([1, datetime.date(2024, 1, 1)], "got date"),
    ],
)
def test_the_message_names_what_json_cannot_hold(value, named):
    with pytest.raises(ContextValueError, match=named):
        Context({"v": value})


class Colour(enum.StrEnum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 3


def test_values_are_stored_as_json_reads_them():
    # a package worker or a server passes the context as JSON: the value a task reads next must
    # be the same in-kernel, so what JSON would change is changed when it is stored
    ctx = Context({"pair": (1, [2, (3,)]), "colour": Colour.RED})
    ctx["size"] = {"s": Size.BIG, "dims": (4, 5)}
    assert ctx.to_dict() == json.loads(ctx.to_json())
    assert type(ctx["pair"]) is list and type(ctx["pair"][1][1]) is list
    assert type(ctx["colour"]) is str and type(ctx["size"]["s"]) is int
    plain = [1, {"a": "b"}]
    ctx["plain"] = plain
    assert ctx["plain"] is plain  # plain JSON values are kept, not copied


def test_returned_dict_values_are_stored_as_json_reads_them():
    ctx = Context({"n": 1})
    out = task_output("t", {"n": 1, "pair": (1, 2)}, ctx)
    assert out == {"n": 1, "pair": [1, 2]}
    with pytest.raises(ContextValueError, match="holds inf"):
        task_output("t", {"r": float("inf")}, ctx)


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
