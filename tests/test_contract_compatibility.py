"""The contract stays wire-compatible with its last release: `make breaking` (buf breaking, in CI) says so,
and it fails on a change that would break the clients built on that release."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUF = ROOT / ".venv" / "bin" / "buf"
RELEASED = ROOT / "proto" / "released" / "iris-v1.binpb"
GOOGLE_API = ("annotations.proto", "http.proto", "field_behavior.proto")


def _workspace(tmp_path: Path) -> Path:
    """A copy of the contract's buf workspace, with the googleapis protos it imports."""
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    deps = tmp_path / ".build" / "protodeps" / "google" / "api"
    deps.mkdir(parents=True)
    for name in GOOGLE_API:
        shutil.copy(Path(sysconfig.get_paths()["purelib"]) / "google" / "api" / name, deps / name)
    return tmp_path


def _breaking(workspace: Path) -> subprocess.CompletedProcess[str]:
    subprocess.run([BUF, "build", "-o", "now.binpb"], cwd=workspace, check=True, timeout=60)
    return subprocess.run(
        [BUF, "breaking", "now.binpb", "--against", str(RELEASED)],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_contract_as_it_stands_is_compatible_with_its_release(tmp_path: Path) -> None:
    done = _breaking(_workspace(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("before", "after", "complaint"),
    [
        ("string question = 2 [", "string question = 12 [", 'field "2" with name "question"'),
        (
            "int64 duration = 5;\n  // Unix time in milliseconds of this reply.",
            "string duration = 5;\n  // Unix",
            "type",
        ),
        ("  rpc CancelMessage(", "  rpc CancelTheMessage(", 'RPC "CancelMessage"'),
    ],
)
def test_a_change_that_breaks_released_clients_is_refused(
    tmp_path: Path, before: str, after: str, complaint: str
) -> None:
    workspace = _workspace(tmp_path)
    contract = workspace / "proto" / "iris" / "v1" / "iris.proto"
    text = contract.read_text()
    assert text.count(before) == 1
    contract.write_text(text.replace(before, after))
    done = _breaking(workspace)
    assert done.returncode != 0
    assert complaint in done.stdout, done.stdout + done.stderr
