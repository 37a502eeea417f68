"""Containment: runAs refuses to start where Iris cannot switch users, the home is Iris's alone, and what
a contained team controls (its home) is read with care."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from iris_core import service as service_module
from iris_core.config import load_config
from iris_core.errors import ConfigurationError
from iris_core.rewind import Rewind, plan_rewind, prompt_uuid
from iris_core.run_as import identity_of, secure_home
from iris_core.service import IrisService
from tests.harness import write_config


async def test_run_as_teams_refuse_to_start_when_iris_cannot_switch_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "can_switch_users", lambda: False)
    config = load_config(write_config(tmp_path, teams={"alpha": {"runAs": "nobody"}}))
    with pytest.raises(ConfigurationError, match="teams alpha have runAs, which needs Iris to run as root"):
        await IrisService.open(config, tmp_path / "iris-home")
    assert not (tmp_path / "iris-home" / "iris.db").exists()


def test_the_home_is_made_private_even_if_it_existed_open(tmp_path: Path) -> None:
    home = tmp_path / "iris-home"
    home.mkdir(mode=0o755)
    secure_home(home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_an_identity_carries_the_users_groups_and_home() -> None:
    nobody = identity_of("nobody")
    assert nobody.uid != 0 and nobody.gid in nobody.groups
    assert nobody.environment()["HOME"] == str(nobody.home)
    assert nobody.environment()["CLAUDE_CONFIG_DIR"] == str(nobody.home / ".claude")
    assert nobody.launcher_value() == f"{nobody.uid}:{nobody.gid}:" + ",".join(map(str, nobody.groups))


def test_a_rewind_reads_no_symlink_and_no_fifo_in_the_transcripts_place(tmp_path: Path) -> None:
    """A contained team controls its home: what stands where its transcript should be is not followed."""
    projects = tmp_path / ".claude" / "projects" / "p"
    projects.mkdir(parents=True)
    prompt = prompt_uuid("m1", 1)
    real = tmp_path / "elsewhere.jsonl"
    real.write_text(json.dumps({"uuid": prompt, "parentUuid": "before"}) + "\n")
    env = {"HOME": str(tmp_path)}
    (projects / "s1.jsonl").symlink_to(real)
    assert plan_rewind(env, "s1", [prompt]) is None
    os.mkfifo(projects / "s2.jsonl")
    assert plan_rewind(env, "s2", [prompt]) is None  # returns at once instead of blocking on the FIFO
    (projects / "s3.jsonl").write_text(real.read_text())
    assert plan_rewind(env, "s3", [prompt]) == Rewind(prompt, "before")


def test_a_rewind_reads_a_bounded_tail_of_the_transcript(tmp_path: Path) -> None:
    """A huge (sparse) transcript costs neither unbounded time nor memory: only its last 64 MiB are read."""
    projects = tmp_path / ".claude" / "projects" / "p"
    projects.mkdir(parents=True)
    early, late = prompt_uuid("m1", 1), prompt_uuid("m1", 2)
    entry = (json.dumps({"uuid": early, "parentUuid": "a"}) + "\n").encode()
    with (projects / "s.jsonl").open("wb") as transcript:
        transcript.write(entry)  # the first line, then 100 MiB of one endless line, then the late prompt
        transcript.truncate(100 * 1024 * 1024)
        transcript.seek(0, os.SEEK_END)
        transcript.write(b"\n" + json.dumps({"uuid": late, "parentUuid": "b"}).encode() + b"\n")
    env = {"HOME": str(tmp_path)}
    assert plan_rewind(env, "s", [early]) is None  # past the window
    assert plan_rewind(env, "s", [early, late]) == Rewind(late, "b")


async def test_two_teams_may_not_share_a_run_as_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service_module, "can_switch_users", lambda: True)
    teams = {"alpha": {"runAs": "nobody"}, "beta": {"runAs": "nobody"}}
    config = load_config(write_config(tmp_path, teams=teams))
    with pytest.raises(ConfigurationError, match="teams alpha and beta both have runAs nobody"):
        await IrisService.open(config, tmp_path / "iris-home")
