"""``cloaca.remote.profiles``: the order in which a client picks its server, key and tenant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloaca.errors import ClientConfigError
from cloaca.remote.profiles import DEFAULT_SERVER, resolve_key, resolve_target


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``CLOACINA_*`` variable of the machine leaks into these tests."""
    for name in ("HOME", "SERVER", "API_KEY", "TENANT", "PROFILE"):
        monkeypatch.delenv(f"CLOACINA_{name}", raising=False)


def write_config(home: Path) -> None:
    (home / "key").write_text("file-key\n")
    (home / "config.toml").write_text(
        '[profiles.default]\nserver = "http://default:1/"\napi_key = "raw-default"\n'
        f'[profiles.prod]\nserver = "http://prod:2"\napi_key = "file:{home / "key"}"\n'
        'tenant = "acme"\n'
    )


def test_flag_then_environment_then_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path)
    prod = resolve_target(profile="prod", home=tmp_path)
    assert (prod.server, prod.api_key, prod.tenant) == ("http://prod:2", "file-key", "acme")
    default = resolve_target(home=tmp_path)
    assert (default.server, default.api_key, default.tenant) == (
        "http://default:1", "raw-default", "public"
    )  # fmt: skip
    monkeypatch.setenv("CLOACINA_SERVER", "http://env:3")
    monkeypatch.setenv("CLOACINA_PROFILE", "prod")
    env = resolve_target(home=tmp_path)
    assert (env.server, env.api_key, env.tenant) == ("http://env:3", "file-key", "acme")
    flags = resolve_target("http://flag:4", "raw", "t1", home=tmp_path)
    assert (flags.server, flags.api_key, flags.tenant) == ("http://flag:4", "raw", "t1")
    assert flags.tenant_path("/workflows") == "/v1/tenants/t1/workflows"


def test_local_server_home_is_the_fallback(tmp_path: Path) -> None:
    assert resolve_target(home=tmp_path).server == DEFAULT_SERVER
    assert resolve_target(home=tmp_path).api_key is None
    (tmp_path / "server.json").write_text(json.dumps({"url": "http://127.0.0.1:5555"}))
    (tmp_path / "bootstrap-key").write_text("boot\n")
    local = resolve_target(home=tmp_path)
    assert (local.server, local.api_key) == ("http://127.0.0.1:5555", "boot")


def test_bad_settings_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path)
    with pytest.raises(ClientConfigError, match="no profile 'stage'") as err:
        resolve_target(profile="stage", home=tmp_path)
    assert err.value.hint is not None and "default, prod" in err.value.hint
    with pytest.raises(ClientConfigError, match="UNSET_KEY is not set"):
        resolve_key("env:UNSET_KEY")
    monkeypatch.setenv("SOME_KEY", " k \n")
    assert resolve_key("env:SOME_KEY") == "k"
    with pytest.raises(ClientConfigError, match="cannot read the API key file"):
        resolve_key(f"file:{tmp_path / 'missing'}")
    (tmp_path / "config.toml").write_text("[profiles\n")
    with pytest.raises(ClientConfigError, match="cannot read .*config.toml"):
        resolve_target(home=tmp_path)
