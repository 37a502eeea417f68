from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

import iris_core.config
from iris_core.config import GrantPermission, IrisConfig, Settings, TeamConfig, load_config, parse_config
from iris_core.errors import ConfigurationError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory: a config folder with ``teams/a``, ``teams/b`` and a plain file ``notes.txt``.

    Tests load ``config.yaml`` by that relative name, so error messages start with ``config.yaml:``.
    """
    monkeypatch.chdir(tmp_path)
    (tmp_path / "teams" / "a").mkdir(parents=True)
    (tmp_path / "teams" / "b").mkdir()
    (tmp_path / "notes.txt").write_text("not a folder\n")
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def load(folder: Path, text: str, environ: Mapping[str, str] | None = None) -> IrisConfig:
    write(folder, text)
    return load_config("config.yaml", environ={} if environ is None else environ)


def load_error(folder: Path, text: str, environ: Mapping[str, str] | None = None) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        load(folder, text, environ)
    return info.value


def team_a(body: str = "") -> str:
    """A config with one team ``a`` whose extra keys are ``body`` (one ``key: value`` per line)."""
    lines = "".join(f"\n    {line}" for line in body.splitlines())
    return f"teams:\n  a:\n    path: teams/a{lines}\n"


# --- defaults and paths ---------------------------------------------------------------------------------


def test_minimal_config_gets_every_documented_default(folder: Path) -> None:
    config = load(folder, team_a())

    assert config.settings == Settings()
    assert config.settings.max_processes == 10
    assert config.settings.idle_timeout_ms == 300_000
    assert config.settings.spawn_timeout_ms == 20_000
    assert config.settings.max_queued_messages == 16
    assert config.settings.permission_timeout_ms == 60_000
    assert config.settings.shutdown_timeout_ms == 10_000
    assert config.settings.log_buffer_size == 5_000
    assert (config.settings.host, config.settings.grpc_port, config.settings.http_port) == (
        "127.0.0.1",
        50051,
        1615,
    )
    assert dict(config.settings.env) == {}
    team = config.teams["a"]
    assert team == TeamConfig(name="a", path=(folder / "teams" / "a").resolve())
    assert team.grant_permission is GrantPermission.ASK
    assert team.session_mcp_enabled is False
    assert (team.description, team.color, team.model, team.session_mcp_path) == (None, None, None, None)
    assert (team.allowed_tools, team.disallowed_tools) == ((), ())
    assert team.mcp_permissions == ("team:tell", "team:wake", "team:cancel", "status:read", "cache:read")
    assert config.source == (folder / "config.yaml").resolve()


def test_every_setting_is_read_from_its_camel_case_key(folder: Path) -> None:
    settings = """
        settings:
          maxProcesses: 3
          idleTimeout: 0
          spawnTimeout: 5000
          maxQueuedMessages: 2
          permissionTimeout: 1000
          shutdownTimeout: 0
          logBufferSize: 10
          host: 0.0.0.0
          grpcPort: 0
          httpPort: 0
          env: {A: x}
        """
    config = load(folder, textwrap.dedent(settings) + team_a())

    assert config.settings == Settings(
        max_processes=3,
        idle_timeout_ms=0,
        spawn_timeout_ms=5000,
        max_queued_messages=2,
        permission_timeout_ms=1000,
        shutdown_timeout_ms=0,
        log_buffer_size=10,
        host="0.0.0.0",
        grpc_port=0,
        http_port=0,
        env={"A": "x"},
    )


def test_every_team_key_is_read(folder: Path) -> None:
    config = load(
        folder,
        team_a(
            'description: "Backend API team"\n'
            'color: "#FF6B9D"\n'
            "idleTimeout: 1000\n"
            "sessionMcpEnabled: true\n"
            "sessionMcpPath: .claude/iris/mcp\n"
            "mcpPermissions: [team:tell, 'status:read,cache:read', team:tell]\n"
            "grantPermission: ask\n"
            "model: claude-sonnet-4-5\n"
            "env: {DEBUG: 1, VERBOSE: true, EMPTY: null, NAME: x}\n"
            "allowedTools: [Read, Grep]\n"
            "disallowedTools: ['Bash(rm:*)']\n"
            "runAs: nobody"
        ),
    )

    team = config.teams["a"]
    assert team.description == "Backend API team"
    assert team.color == "#FF6B9D"
    assert team.idle_timeout_ms == 1000
    assert team.session_mcp_enabled is True
    assert team.session_mcp_path == ".claude/iris/mcp"
    assert team.mcp_permissions == ("team:tell", "status:read", "cache:read")
    assert team.model == "claude-sonnet-4-5"
    assert dict(team.env) == {"DEBUG": "1", "VERBOSE": "true", "EMPTY": "", "NAME": "x"}
    assert team.allowed_tools == ("Read", "Grep")
    assert team.disallowed_tools == ("Bash(rm:*)",)
    assert team.run_as == "nobody"


@pytest.mark.parametrize(
    ("user", "problem"),
    [
        ("root", "'root' is root; a team must run as an unprivileged user"),
        ("no-such-user-x", "there is no user"),
    ],
)
def test_run_as_must_name_an_existing_unprivileged_user(folder: Path, user: str, problem: str) -> None:
    error = load_error(folder, team_a(f"runAs: {user}"))
    assert "teams.a.runAs: " in str(error) and problem in str(error)


def test_team_idle_timeout_defaults_to_the_settings_value_at_load_time(folder: Path) -> None:
    config = load(
        folder,
        "settings: {idleTimeout: 42}\nteams:\n  a: {path: teams/a}\n  b: {path: teams/b, idleTimeout: 0}\n",
    )

    assert config.teams["a"].idle_timeout_ms == 42
    assert config.teams["b"].idle_timeout_ms == 0


def test_relative_team_paths_are_resolved_against_the_config_folder_not_the_working_directory(
    folder: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(folder, "teams:\n  a: {path: ./teams/a}\n  b: {path: teams/a/../b}\n")
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    config = load_config(path, environ={})

    assert config.teams["a"].path == (folder / "teams" / "a").resolve()
    assert config.teams["b"].path == (folder / "teams" / "b").resolve()
    assert config.teams["a"].path.is_absolute()


def test_absolute_and_home_relative_team_paths_are_kept(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(folder / "teams"))
    config = load(folder, f"teams:\n  a: {{path: {folder / 'teams' / 'a'}}}\n  b: {{path: ~/b}}\n")

    assert config.teams["a"].path == (folder / "teams" / "a").resolve()
    assert config.teams["b"].path == (folder / "teams" / "b").resolve()


def test_teams_keep_the_order_of_the_file(folder: Path) -> None:
    config = load(folder, "teams:\n  b: {path: teams/b}\n  a: {path: teams/a}\n")

    assert list(config.teams) == ["b", "a"]


def test_empty_sections_and_null_values_mean_defaults(folder: Path) -> None:
    config = load(
        folder, "settings:\nteams:\n  a:\n    path: teams/a\n    model: null\n    env:\n    allowedTools:\n"
    )

    assert config.settings == Settings()
    assert config.teams["a"] == TeamConfig(name="a", path=(folder / "teams" / "a").resolve())


def test_date_looking_values_stay_strings(folder: Path) -> None:
    config = load(folder, team_a("description: 2025-01-01\nenv: {RELEASE: 2025-01-01}"))

    assert config.teams["a"].description == "2025-01-01"
    assert config.teams["a"].env["RELEASE"] == "2025-01-01"


def test_loaded_config_is_read_only(folder: Path) -> None:
    config = load(folder, team_a("env: {A: x}"))

    with pytest.raises(dataclasses.FrozenInstanceError):
        config.settings.max_processes = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.teams["b"] = config.teams["a"]  # type: ignore[index]
    with pytest.raises(TypeError):
        config.teams["a"].env["A"] = "y"  # type: ignore[index]


def test_values_built_by_hand_are_read_only_too(folder: Path) -> None:
    env = {"A": "x"}
    settings = Settings(env=env)
    team = TeamConfig(name="a", path=folder, env=env)
    config = IrisConfig(settings=settings, teams={"a": team}, source=folder / "config.yaml")
    env["A"] = "changed"

    assert settings.env["A"] == team.env["A"] == "x"
    with pytest.raises(TypeError):
        config.teams["b"] = team  # type: ignore[index]


# --- grantPermission -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("ask", GrantPermission.ASK),
        ('"yes"', GrantPermission.YES),
        ('"no"', GrantPermission.NO),
        ("yes", GrantPermission.YES),
        ("no", GrantPermission.NO),
        ("true", GrantPermission.YES),
        ("off", GrantPermission.NO),
        ("${GRANT}", GrantPermission.YES),
    ],
)
def test_grant_permission_reads_words_and_yaml_booleans(
    folder: Path, written: str, expected: GrantPermission
) -> None:
    config = load(folder, team_a(f"grantPermission: {written}"), {"GRANT": "yes"})

    assert config.teams["a"].grant_permission is expected


# --- interpolation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "environ", "field", "expected"),
    [
        pytest.param('idleTimeout: "${IDLE:-4}"', {}, "idle_timeout_ms", 4, id="default-number-stays-number"),
        pytest.param("idleTimeout: ${IDLE}", {"IDLE": "7"}, "idle_timeout_ms", 7, id="number-stays-number"),
        pytest.param(
            "sessionMcpEnabled: ${FLAG:-true}", {}, "session_mcp_enabled", True, id="bool-stays-bool"
        ),
        pytest.param(
            "sessionMcpEnabled: ${FLAG:-true}", {"FLAG": "false"}, "session_mcp_enabled", False, id="set-bool"
        ),
        pytest.param("description: v${VER}", {"VER": "2"}, "description", "v2", id="embedded-stays-string"),
        pytest.param(
            "description: ${VER}", {"VER": "007"}, "description", "007", id="string-field-keeps-text"
        ),
        pytest.param("description: ${D:-fallback}", {}, "description", "fallback", id="default-when-unset"),
        pytest.param(
            "description: ${D:-fallback}", {"D": ""}, "description", "fallback", id="default-when-empty"
        ),
        pytest.param("description: ${D:-}", {}, "description", None, id="empty-default-means-unset"),
        pytest.param('description: "a ${A} b ${B:-c}"', {"A": "1"}, "description", "a 1 b c", id="several"),
        pytest.param('description: "cost $$5"', {}, "description", "cost $5", id="dollar-escape"),
        pytest.param('description: "$${HOME}"', {}, "description", "${HOME}", id="escaped-expression"),
        pytest.param('description: "$5 or $HOME"', {}, "description", "$5 or $HOME", id="bare-dollar-kept"),
        pytest.param("model: ${MODEL:-}", {}, "model", None, id="unset-model"),
        pytest.param(
            "allowedTools: ['${TOOL}']", {"TOOL": "Read"}, "allowed_tools", ("Read",), id="list-item"
        ),
    ],
)
def test_interpolation_substitutes_values_and_keeps_types(
    folder: Path, line: str, environ: dict[str, str], field: str, expected: object
) -> None:
    config = load(folder, team_a(line), environ)

    value = getattr(config.teams["a"], field)
    assert value == expected
    assert type(value) is type(expected)


def test_interpolated_env_values_keep_their_text(folder: Path) -> None:
    config = load(folder, team_a("env: {MASK: '${MASK}', FLAG: '${FLAG}'}"), {"MASK": "0x1F", "FLAG": "yes"})

    assert dict(config.teams["a"].env) == {"MASK": "0x1F", "FLAG": "yes"}


def test_interpolation_applies_to_team_paths(folder: Path) -> None:
    config = load(folder, "teams:\n  a: {path: '${ROOT}/teams/a'}\n", {"ROOT": str(folder)})

    assert config.teams["a"].path == (folder / "teams" / "a").resolve()


def test_mapping_keys_are_not_interpolated(folder: Path) -> None:
    config = load(folder, "settings:\n  env: {'${NAME}': x}\n" + team_a(), {"NAME": "OTHER"})

    assert dict(config.settings.env) == {"${NAME}": "x"}


def test_missing_variable_error_names_the_file_key_and_variable(folder: Path) -> None:
    error = load_error(folder, team_a("model: ${IRIS_MODEL}"))

    assert str(error).startswith("config.yaml: teams.a.model: environment variable IRIS_MODEL is not set")
    assert error.details["key"] == "teams.a.model"


def test_os_environ_is_used_when_no_environ_is_given(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRIS_TEST_MODEL", "opus")

    config = load_config(write(folder, team_a("model: ${IRIS_TEST_MODEL}")))

    assert config.teams["a"].model == "opus"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ('"${OPEN"', 'has no closing "}"'),
        ('"${}"', "is not a valid expression"),
        ('"${1X}"', "is not a valid expression"),
        ('"${X:?boom}"', "is not a valid expression"),
        ('"${A:-${B}}"', "nested"),
    ],
)
def test_malformed_expressions_are_refused_with_the_key(folder: Path, value: str, fragment: str) -> None:
    error = load_error(folder, team_a(f"description: {value}"))

    assert str(error).startswith("config.yaml: teams.a.description: ")
    assert fragment in str(error)


def test_type_errors_after_interpolation_show_the_written_value_too(folder: Path) -> None:
    error = load_error(folder, "settings: {maxProcesses: '${MAX}'}\n" + team_a(), {"MAX": "lots"})

    assert str(error) == (
        'config.yaml: settings.maxProcesses: expected an integer >= 1, got "lots" (from "${MAX}")'
    )


# --- validation rules -------------------------------------------------------------------------------------

SETTINGS_CASES = [
    ("maxProcesses: 0", "settings.maxProcesses", "expected an integer >= 1, got 0"),
    ("maxProcesses: many", "settings.maxProcesses", 'expected an integer >= 1, got "many"'),
    ("maxProcesses: true", "settings.maxProcesses", "expected an integer >= 1, got true"),
    ("maxProcesses: 1.5", "settings.maxProcesses", "expected an integer >= 1, got 1.5"),
    ("idleTimeout: -1", "settings.idleTimeout", "expected an integer >= 0, got -1"),
    ("idleTimeout: soon", "settings.idleTimeout", 'expected an integer >= 0, got "soon"'),
    ("spawnTimeout: 0", "settings.spawnTimeout", "expected an integer >= 1, got 0"),
    ("maxQueuedMessages: 0", "settings.maxQueuedMessages", "expected an integer >= 1, got 0"),
    ("permissionTimeout: 0", "settings.permissionTimeout", "expected an integer >= 1, got 0"),
    ("shutdownTimeout: -5", "settings.shutdownTimeout", "expected an integer >= 0, got -5"),
    ("logBufferSize: 0", "settings.logBufferSize", "expected an integer >= 1, got 0"),
    ("host: 5", "settings.host", "expected a string, got 5"),
    ("host: [a]", "settings.host", "expected a string, got a list"),
    ("grpcPort: 70000", "settings.grpcPort", "expected an integer 0..65535, got 70000"),
    ("grpcPort: -1", "settings.grpcPort", "expected an integer 0..65535, got -1"),
    ("httpPort: web", "settings.httpPort", 'expected an integer 0..65535, got "web"'),
    ("httpPort: 50051", "settings.httpPort", "must differ from grpcPort; both are 50051"),
    ("env: [A]", "settings.env", "expected a mapping, got a list"),
    ("env: {A: [1]}", "settings.env.A", "expected a string, number or boolean, got a list"),
    ("env: {A: {b: 1}}", "settings.env.A", "expected a string, number or boolean, got a mapping"),
    ("env: {'A=B': x}", "settings.env", '"A=B" is not a valid environment variable name'),
    ("env: {1: x}", "settings.env", "1 is not a valid environment variable name; quote it"),
    ("env: {ON: x}", "settings.env", "true is not a valid environment variable name; quote it"),
]


@pytest.mark.parametrize(("line", "key", "problem"), SETTINGS_CASES)
def test_each_settings_rule_names_the_file_and_key(folder: Path, line: str, key: str, problem: str) -> None:
    error = load_error(folder, f"settings:\n  {line}\n" + team_a())

    assert str(error) == f"config.yaml: {key}: {problem}"
    assert error.details == {
        "file": "config.yaml",
        "key": key,
        "problem": problem,
        "problems": [{"key": key, "problem": problem}],
    }


TEAM_CASES = [
    ("description: 5", "teams.a.description", "expected a string, got 5"),
    ("color: red", "teams.a.color", 'expected "#RRGGBB" or "#RGB", got "red"'),
    ("color: '#12345'", "teams.a.color", 'expected "#RRGGBB" or "#RGB", got "#12345"'),
    ("color: '#GGG'", "teams.a.color", 'expected "#RRGGBB" or "#RGB", got "#GGG"'),
    ("idleTimeout: -5", "teams.a.idleTimeout", "expected an integer >= 0, got -5"),
    ("idleTimeout: soon", "teams.a.idleTimeout", 'expected an integer >= 0, got "soon"'),
    ("sessionMcpEnabled: 'true'", "teams.a.sessionMcpEnabled", 'expected true or false, got "true"'),
    ("sessionMcpEnabled: 1", "teams.a.sessionMcpEnabled", "expected true or false, got 1"),
    ("sessionMcpPath: 1", "teams.a.sessionMcpPath", "expected a string, got 1"),
    ("mcpPermissions: team:tell", "teams.a.mcpPermissions", 'expected a list of strings, got "team:tell"'),
    ("mcpPermissions: [1]", "teams.a.mcpPermissions[0]", "expected a string, got 1"),
    ("mcpPermissions: []", "teams.a.mcpPermissions", "At least one permission is required"),
    (
        "mcpPermissions: [team:tell, team:fly]",
        "teams.a.mcpPermissions",
        "Unknown permission 'team:fly' (known: team:tell, team:wake, team:sleep, team:cancel, team:clear, "
        "team:fork, cache:read, cache:write, status:read, debug:read, team:impersonate, admin)",
    ),
    ("grantPermission: maybe", "teams.a.grantPermission", 'expected one of yes, no, ask, got "maybe"'),
    ("grantPermission: 1", "teams.a.grantPermission", "expected one of yes, no, ask, got 1"),
    ("model: [opus]", "teams.a.model", "expected a string, got a list"),
    ("env: x", "teams.a.env", 'expected a mapping, got "x"'),
    ("env: {A: [1]}", "teams.a.env.A", "expected a string, number or boolean, got a list"),
    ("allowedTools: Read", "teams.a.allowedTools", 'expected a list of strings, got "Read"'),
    ("allowedTools: [1]", "teams.a.allowedTools[0]", "expected a string, got 1"),
    ("allowedTools: [Read, '']", "teams.a.allowedTools[1]", 'expected a non-empty string, got ""'),
    ("disallowedTools: {a: 1}", "teams.a.disallowedTools", "expected a list of strings, got a mapping"),
    ("disallowedTools: [null]", "teams.a.disallowedTools[0]", "expected a non-empty string, got null"),
]


@pytest.mark.parametrize(("line", "key", "problem"), TEAM_CASES)
def test_each_team_rule_names_the_file_and_key(folder: Path, line: str, key: str, problem: str) -> None:
    error = load_error(folder, team_a(line))

    assert str(error) == f"config.yaml: {key}: {problem}"
    assert (error.details["key"], error.details["problem"]) == (key, problem)


PATH_CASES = [
    ("a: {description: x}", "teams.a.path", "is required: the team's project folder"),
    ("a: {path: ''}", "teams.a.path", "is required: the team's project folder"),
    ("a: {path: 5}", "teams.a.path", "expected a string, got 5"),
    (
        "a: {path: teams/missing}",
        "teams.a.path",
        '"teams/missing" (resolved to {folder}/teams/missing) does not exist',
    ),
    (
        "a: {path: notes.txt}",
        "teams.a.path",
        '"notes.txt" (resolved to {folder}/notes.txt) is not a directory',
    ),
    ("a: {path: '{folder}/nope'}", "teams.a.path", '"{folder}/nope" does not exist'),
    ("a:", "teams.a", "needs at least a path"),
    ("a: [teams/a]", "teams.a", "expected a mapping, got a list"),
]


@pytest.mark.parametrize(("line", "key", "problem"), PATH_CASES)
def test_each_team_path_rule_names_the_file_and_key(folder: Path, line: str, key: str, problem: str) -> None:
    real = folder.resolve()
    error = load_error(folder, "teams:\n  " + line.replace("{folder}", str(real)) + "\n")

    assert str(error) == f"config.yaml: {key}: {problem.replace('{folder}', str(real))}"


NAME_CASES = [
    ("'a/b'", 'teams."a/b"', 'team name must not contain "/"'),
    ("'a\\b'", 'teams."a\\\\b"', 'team name must not contain "\\"'),
    ("'a..b'", 'teams."a..b"', 'team name must not contain ".."'),
    ('"a\\0b"', 'teams."a\\u0000b"', "team name must not contain a NUL character"),
    ("'-a'", 'teams."-a"', "team name must start with a letter or digit and contain only letters, digits"),
    ("'a b'", 'teams."a b"', "team name must start with a letter or digit"),
    ("''", 'teams.""', "team name must not be empty"),
    ("'" + "x" * 101 + "'", "teams.", "team name is 101 characters long; the limit is 100"),
    ("123", "teams", "team names must be strings, got 123; quote the name"),
]


@pytest.mark.parametrize(("name", "key", "problem"), NAME_CASES)
def test_each_team_name_rule_names_the_file_and_key(folder: Path, name: str, key: str, problem: str) -> None:
    error = load_error(folder, f"teams:\n  {name}: {{path: teams/a}}\n")

    assert str(error).startswith(f"config.yaml: {key}")
    assert problem in str(error)


def test_team_names_up_to_the_limit_with_dots_dashes_and_underscores_are_accepted(folder: Path) -> None:
    names = ["A", "9", "team-backend", "web_ui.v2", "x" * 100]
    config = load(folder, "teams:\n" + "".join(f"  '{name}': {{path: teams/a}}\n" for name in names))

    assert list(config.teams) == names


DOCUMENT_CASES = [
    ("", "config.yaml: the file is empty; it needs a teams: section listing at least one team"),
    ("- a\n", "config.yaml: expected a mapping with settings: and teams:, got a list"),
    ("settings: {}\n", "config.yaml: teams: is required: list at least one team, each with a path"),
    ("teams: {}\n", "config.yaml: teams: must list at least one team"),
    ("teams: [a]\n", "config.yaml: teams: expected a mapping, got a list"),
    ("settings: 5\n" + team_a(), "config.yaml: settings: expected a mapping, got 5"),
]


@pytest.mark.parametrize(("text", "message"), DOCUMENT_CASES)
def test_document_shape_problems_name_the_file(folder: Path, text: str, message: str) -> None:
    assert str(load_error(folder, text)) == message


# --- unknown and refused keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "settings: {maxProcess: 3}\n" + team_a(),
            "config.yaml: settings.maxProcess: unknown key (did you mean maxProcesses?)",
        ),
        (
            "settings: {max_processes: 3}\n" + team_a(),
            "config.yaml: settings.max_processes: unknown key (did you mean maxProcesses?)",
        ),
        ("team:\n  a: {path: teams/a}\n" + team_a(), "config.yaml: team: unknown key (did you mean teams?)"),
        (
            team_a("idletimeout: 5"),
            "config.yaml: teams.a.idletimeout: unknown key (did you mean idleTimeout?)",
        ),
        (team_a("colour: '#fff'"), "config.yaml: teams.a.colour: unknown key (did you mean color?)"),
        (team_a("zzz: 1"), "config.yaml: teams.a.zzz: unknown key"),
    ],
)
def test_unknown_keys_are_refused_with_the_nearest_known_key(folder: Path, text: str, message: str) -> None:
    assert str(load_error(folder, text)) == message


def test_a_remote_team_reads_the_original_remote_options(folder: Path) -> None:
    config = load(
        folder,
        """\
        teams:
          a:
            path: /srv/projects/a
            remote: ssh bob@build-1
            claudePath: /opt/claude/bin/claude
            remoteOptions:
              identity: keys/id_ed25519
              port: 2222
              strictHostKeyChecking: false
              connectTimeout: 2500
              serverAliveInterval: 15
              serverAliveCountMax: 2
              compression: true
              extraSshArgs: ["-o", "LogLevel=ERROR"]
        """,
    )

    remote = config.teams["a"].remote
    assert remote is not None
    assert config.teams["a"].path == Path(
        "/srv/projects/a"
    )  # on the remote host: not resolved or checked here
    assert (remote.destination, remote.claude_path, remote.port) == (
        "bob@build-1",
        "/opt/claude/bin/claude",
        2222,
    )
    assert remote.identity == (folder / "keys" / "id_ed25519").resolve()
    assert not remote.strict_host_key_checking
    assert (remote.connect_timeout_ms, remote.server_alive_interval_s, remote.server_alive_count_max) == (
        2500,
        15,
        2,
    )
    assert remote.compression and not remote.forward_agent
    assert remote.extra_ssh_args == ("-o", "LogLevel=ERROR")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "remote: ssh -p 22 host",
            'config.yaml: teams.a.remote: expected "ssh user@host" (or "ssh host"), got',
        ),
        ("remote: ssh a b", 'config.yaml: teams.a.remote: expected "ssh user@host"'),
        (
            "remote: ssh h\nremoteOptions: {passphrase: x}",
            "config.yaml: teams.a.remoteOptions.passphrase: Iris runs",
        ),
        (
            "remote: ssh h\nssh2: true",
            "config.yaml: teams.a.ssh2: Iris reaches remote teams with the OpenSSH client",
        ),
        (
            "remoteOptions: {port: 22}",
            "config.yaml: teams.a.remoteOptions: applies only to a team with remote",
        ),
        ("claudePath: /bin/claude", "config.yaml: teams.a.claudePath: applies only to a team with remote"),
        ("remote: ssh h", "config.yaml: teams.a.path: a remote team's path must be absolute on its host"),
        (
            "remote: ssh h\nremoteOptions: {port: 0}",
            "config.yaml: teams.a.remoteOptions.port: expected an integer",
        ),
        ("placement: {kind: ray}", "config.yaml: teams.a.placement.address: is required for kind ray"),
        ("placement: {kind: k8s}", "config.yaml: teams.a.placement.kind: expected one of local, ray"),
        (
            "placement: {kind: local, address: x}",
            "config.yaml: teams.a.placement: kind local takes no other keys",
        ),
        (
            "placement: {kind: ray, address: h:1, cpus: 0}",
            "config.yaml: teams.a.placement.cpus: expected a number",
        ),
        ("warmSpares: -1", "config.yaml: teams.a.warmSpares: expected an integer 0..10, got -1"),
        ("warmSpares: 11", "config.yaml: teams.a.warmSpares: expected an integer 0..10, got 11"),
    ],
)
def test_bad_placement_keys_are_refused_naming_the_key(folder: Path, body: str, message: str) -> None:
    assert str(load_error(folder, team_a(body))).startswith(message)


def test_ray_placement_and_warm_spares_have_a_global_default_a_team_overrides(folder: Path) -> None:
    config = load(
        folder,
        """\
        settings:
          warmSpares: 1
          placement: {kind: ray, address: "127.0.0.1:6379", cpus: 0.5, memoryMb: 300}
        teams:
          a: {path: teams/a}
          b: {path: teams/b, warmSpares: 0, placement: {kind: local}}
        """,
    )

    a, b = config.teams["a"], config.teams["b"]
    assert (a.warm_spares, b.warm_spares) == (1, 0)
    assert a.ray is not None and (a.ray.address, a.ray.cpus, a.ray.memory_mb, a.ray.namespace) == (
        "127.0.0.1:6379",
        0.5,
        300,
        "iris",
    )
    assert b.ray is None
    assert load(folder, team_a()).teams["a"].warm_spares == 0


def test_a_team_cannot_be_both_remote_and_on_ray(folder: Path) -> None:
    error = load_error(folder, team_a("remote: ssh h\nplacement: {kind: ray, address: 'h:1'}"))

    assert "teams.a: remote and a ray placement exclude each other" in str(error)


# --- files and YAML -------------------------------------------------------------------------------------


def test_yaml_syntax_error_names_the_file_and_line(folder: Path) -> None:
    error = load_error(folder, "teams:\n  a:\n    path: [teams/a\n  b: {path: teams/b}\n")

    assert str(error).startswith("config.yaml: line 4, column ")
    assert "invalid YAML" in str(error)
    assert error.details["line"] == 4
    assert "Traceback" not in str(error)


def test_repeated_keys_are_refused_with_their_line(folder: Path) -> None:
    error = load_error(folder, "teams:\n  a: {path: teams/a}\n  a: {path: teams/b}\n")

    assert str(error).startswith("config.yaml: line 3, column 3: invalid YAML: found duplicate key 'a'")


def test_merge_keys_may_override_merged_values(folder: Path) -> None:
    config = load(
        folder, "teams:\n  a: &base {path: teams/a, idleTimeout: 5}\n  b:\n    <<: *base\n    path: teams/b\n"
    )

    assert config.teams["b"].path == (folder / "teams" / "b").resolve()
    assert config.teams["b"].idle_timeout_ms == 5


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_config(tmp_path / "absent.yaml")

    assert str(info.value) == f"{tmp_path / 'absent.yaml'}: file not found"
    assert info.value.details["file"] == str(tmp_path / "absent.yaml")


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is a directory, not a YAML file"):
        load_config(tmp_path)


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"teams: \xff\n")

    with pytest.raises(ConfigurationError, match=r"config\.yaml: is not UTF-8 text"):
        load_config(path)


def test_errors_name_the_file_as_the_caller_wrote_it(folder: Path) -> None:
    write(folder, "teams: {}\n")

    with pytest.raises(ConfigurationError) as info:
        load_config("./config.yaml")

    assert str(info.value) == "./config.yaml: teams: must list at least one team"


def test_every_problem_is_listed_one_per_line(folder: Path) -> None:
    error = load_error(
        folder,
        "settings: {maxProcesses: 0, hots: x}\n"
        "teams:\n  a: {path: teams/a, color: red}\n  b: {path: nowhere}\n",
    )

    assert str(error).splitlines() == [
        "config.yaml: settings.hots: unknown key (did you mean host?)",
        "config.yaml: settings.maxProcesses: expected an integer >= 1, got 0",
        'config.yaml: teams.a.color: expected "#RRGGBB" or "#RGB", got "red"',
        f'config.yaml: teams.b.path: "nowhere" (resolved to {folder.resolve()}/nowhere) does not exist',
    ]
    problems = error.details["problems"]
    assert isinstance(problems, list)
    assert [p["key"] for p in problems] == [
        "settings.hots",
        "settings.maxProcesses",
        "teams.a.color",
        "teams.b.path",
    ]


# --- parse_config, examples and the public surface ------------------------------------------------------


def test_parse_config_validates_an_already_parsed_document(folder: Path) -> None:
    config = parse_config(
        {"settings": {"maxProcesses": "${N}"}, "teams": {"a": {"path": "teams/a"}}},
        source="inline",
        base_dir=folder,
        environ={"N": "2"},
    )

    assert config.settings.max_processes == 2
    assert config.teams["a"].path == (folder / "teams" / "a").resolve()
    assert config.source == folder.resolve() / "inline"
    with pytest.raises(ConfigurationError, match=r"^inline: teams: must list at least one team$"):
        parse_config({"teams": {}}, source="inline", base_dir=folder, environ={})


def test_example_config_loads_and_each_team_folder_describes_its_team() -> None:
    config = load_config(EXAMPLES / "config.yaml", environ={})

    assert set(config.teams) >= {"frontend", "backend", "docs"}
    for team in config.teams.values():
        assert team.path.is_relative_to(EXAMPLES / "teams")
        assert (team.path / "CLAUDE.md").read_text().startswith("# ")
        assert team.description


def test_public_names_are_exported_and_sorted() -> None:
    assert iris_core.config.__all__ == sorted(iris_core.config.__all__)
    for name in iris_core.config.__all__:
        assert hasattr(iris_core.config, name)
