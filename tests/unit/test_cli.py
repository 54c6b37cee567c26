"""The CLI's parts that need no server: configuration, argument errors, an unreachable server, and how a followed
run's journal becomes its status (a suspension in the history is not the end)."""

from __future__ import annotations

import socket

import pytest

from workflows.cli import main
from workflows.cli.client import CliError, Config
from workflows.cli.follow import RunView


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    for name in ("WORKFLOWS_URL", "WORKFLOWS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKFLOWS_CONFIG", str(tmp_path / "config.toml"))
    return tmp_path / "config.toml"


def test_config__environment_wins_over_the_file(no_env, monkeypatch):
    no_env.write_text('url = "http://example.test/wf"\ntoken = "wft_file"\n')
    assert Config.load() == Config(url="http://example.test/wf/", token="wft_file")
    monkeypatch.setenv("WORKFLOWS_TOKEN", "wft_env")
    assert Config.load().token == "wft_env"
    no_env.write_text("url = [")
    with pytest.raises(CliError, match="Cannot read"):
        Config.load()


def test_config__missing_token_says_where_to_get_one(no_env, monkeypatch, capsys):
    monkeypatch.setenv("WORKFLOWS_URL", "http://127.0.0.1:1/")
    assert main(["list"]) == 5
    assert "Tokens page" in capsys.readouterr().err


def test_usage__bad_json_input_is_64_and_an_unreachable_server_5(no_env, monkeypatch, capsys, tmp_path):
    assert pytest.raises(SystemExit, main, ["start", "x", "--input", "{nope"]).value.code == 64
    assert pytest.raises(SystemExit, main, ["start", "x", "--input", f"@{tmp_path / 'absent.json'}"]).value.code == 64
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("WORKFLOWS_URL", f"http://127.0.0.1:{port}/")
    monkeypatch.setenv("WORKFLOWS_TOKEN", "wft_x")
    assert main(["show", "1", "--json"]) == 5
    assert "Cannot reach" in capsys.readouterr().err


def test_follow__a_suspension_in_the_history_is_not_the_end():
    view = RunView(7, horizon=6)
    events = ["run_created", "run_running", "run_suspended", "run_running", "run_succeeded"]
    for seq, kind in enumerate(events[:3], 1):
        view.apply({"seq": seq, "kind": kind})
    assert view.status == "suspended" and not view.done  # the subscription's last_seq is further on
    for seq, kind in enumerate(events[3:], 4):
        view.apply({"seq": seq, "kind": kind})
    view.apply({"seq": 6, "kind": "step_log", "step": "a", "data": {"message": "hi"}})
    assert view.status == "succeeded" and view.done and view.logs == ["a: hi"]
