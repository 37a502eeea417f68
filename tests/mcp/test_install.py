"""`iris mcp install`: the .mcp.json entry and `claude mcp add` line that register Iris in a project."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import pytest

from mcp_adapter.cli import main
from mcp_adapter.install import default_team, server_entry

TARGET = "127.0.0.1:6000"


@pytest.fixture(autouse=True)
def _no_iris_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flags' defaults come from the environment; keep the test's own out of it."""
    for name in ("IRIS_TARGET", "IRIS_FROM_TEAM", "IRIS_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def printed(out: str) -> tuple[dict[str, Any], str]:
    """Split what `install` prints into the .mcp.json block and the `claude mcp add` line."""
    block, _, rest = out.partition("\n\n# or, with Claude Code's own command:\n")
    assert block.startswith("# .mcp.json"), out
    mcp_json = json.loads(block.split("\n", 1)[1])
    assert isinstance(mcp_json, dict)
    return mcp_json, rest.strip()


def install(project: Path, *flags: str) -> int:
    return main(["install", "--project", str(project), *flags])


def test_prints_the_entry_and_the_claude_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert install(tmp_path, "--from-team", "web", "--target", TARGET) == 0
    mcp_json, line = printed(capsys.readouterr().out)
    assert list(mcp_json) == ["mcpServers"]
    assert list(mcp_json["mcpServers"]) == ["iris"]
    entry = mcp_json["mcpServers"]["iris"]
    assert entry["type"] == "stdio"
    assert entry["env"] == {"IRIS_API_KEY": "${IRIS_API_KEY}"}
    args = entry["args"]
    assert args[args.index("--from-team") + 1] == "web"
    assert args[args.index("--target") + 1] == TARGET
    assert entry == server_entry(from_team="web", target=TARGET)

    argv = shlex.split(line)
    assert argv[:5] == ["claude", "mcp", "add", "--scope", "project"]
    assert argv[argv.index("-e") + 1] == "IRIS_API_KEY=${IRIS_API_KEY}"
    dashes = argv.index("--")
    assert argv[dashes - 1] == "iris"
    assert argv[dashes + 1 :] == [entry["command"], *args]

    assert list(tmp_path.iterdir()) == []


def test_name_and_tls_ca_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = tmp_path / "certs" / "ca.pem"
    assert install(tmp_path, "--from-team", "web", "--name", "iris-prod", "--tls-ca", str(ca)) == 0
    mcp_json, line = printed(capsys.readouterr().out)
    args = mcp_json["mcpServers"]["iris-prod"]["args"]
    assert args[args.index("--tls-ca") + 1] == str(ca.resolve())
    assert args[args.index("--target") + 1] == "127.0.0.1:50051"  # the default target
    argv = shlex.split(line)
    assert argv[argv.index("--") - 1] == "iris-prod"


def test_from_team_defaults_to_the_project_folder_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "My Web.App!"
    project.mkdir()
    assert install(project, "--target", TARGET) == 0
    mcp_json, _ = printed(capsys.readouterr().out)
    args = mcp_json["mcpServers"]["iris"]["args"]
    assert args[args.index("--from-team") + 1] == "My-Web.App"
    assert default_team(tmp_path / "shop_api") == "shop_api"
    assert default_team(tmp_path / "...") == "team"  # nothing left after sanitizing
    assert default_team(Path("/")) == "team"


def test_write_creates_mcp_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert install(tmp_path, "--write", "--from-team", "web", "--target", TARGET) == 0
    out = capsys.readouterr().out
    path = tmp_path / ".mcp.json"
    assert str(path) in out
    data = json.loads(path.read_text())
    assert data == {"mcpServers": {"iris": server_entry(from_team="web", target=TARGET)}}
    assert [p.name for p in tmp_path.iterdir()] == [".mcp.json"]  # no temporary file left behind


def test_write_keeps_other_servers_and_replaces_iris(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = {"type": "stdio", "command": "other-server", "args": ["--flag"]}
    path = tmp_path / ".mcp.json"
    path.write_text(json.dumps({"mcpServers": {"other": other, "iris": {"command": "old"}}, "extra": [1, 2]}))
    # A key in the environment must still not be written: the file holds only the reference.
    secret = "iris_sk_live_" + "s" * 40
    monkeypatch.setenv("IRIS_API_KEY", secret)

    assert install(tmp_path, "--write", "--from-team", "web", "--target", TARGET) == 0
    capsys.readouterr()
    text = path.read_text()
    data = json.loads(text)
    assert data["extra"] == [1, 2]
    assert data["mcpServers"]["other"] == other
    assert data["mcpServers"]["iris"] == server_entry(from_team="web", target=TARGET)
    assert list(data["mcpServers"]) == ["other", "iris"]
    assert secret not in text
    assert "iris_sk_" not in text
    assert data["mcpServers"]["iris"]["env"] == {"IRIS_API_KEY": "${IRIS_API_KEY}"}


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b'{"mcpServers": []}', b"\xff\xfe{}"],
    ids=["invalid", "array", "servers-not-object", "not-utf8"],
)
def test_write_refuses_a_bad_mcp_json_and_leaves_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    path = tmp_path / ".mcp.json"
    path.write_bytes(content)
    assert install(tmp_path, "--write", "--from-team", "web") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("iris: ")
    assert str(path) in captured.err
    assert path.read_bytes() == content
    assert [p.name for p in tmp_path.iterdir()] == [".mcp.json"]


def test_the_entry_command_is_an_executable(tmp_path: Path) -> None:
    entry = server_entry(from_team="web", target=TARGET)
    command = Path(entry["command"])
    assert command.is_absolute()
    assert command.is_file()
    assert os.access(command, os.X_OK)


def test_flags_given_before_install_are_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["--from-team", "web", "--target", "10.0.0.1:6000", "install", "--project", str(tmp_path)]) == 0
    )
    mcp_json, _ = printed(capsys.readouterr().out)
    assert mcp_json["mcpServers"]["iris"]["args"][-4:] == ["--from-team", "web", "--target", "10.0.0.1:6000"]


def test_a_written_mcp_json_is_readable_by_the_project_like_any_file(tmp_path: Path) -> None:
    assert install(tmp_path, "--write") == 0
    assert (tmp_path / ".mcp.json").stat().st_mode & 0o777 == 0o666 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("seconds", ["0", "-1", "soon"])
def test_a_heartbeat_that_would_flood_the_client_is_refused(
    seconds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--heartbeat", seconds])
    assert exited.value.code == 2
    assert "--heartbeat" in capsys.readouterr().err
