"""Reading ``config.yaml`` from disk, so every failure names the file and, for YAML errors, the line."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from ._models import IrisConfig
from ._reader import Problem, configuration_error
from ._schema import parse_config
from ._yaml import read_yaml

__all__ = ["load_config"]


def load_config(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> IrisConfig:
    """Load, substitute and validate the configuration file at ``path``.

    Relative team paths are resolved against the file's own folder (after following a symlink to the
    file), not the working directory, so the same file means the same thing wherever Iris starts.

    Args:
        path: The YAML file. Error messages name it as given here.
        environ: Variables for ``${...}`` substitution; ``os.environ`` if omitted.

    Raises:
        ConfigurationError: the file is missing, unreadable, not YAML, or invalid; the message lists every
            problem found, one ``file: key: problem`` per line.

    """
    source = os.fspath(path)
    file = Path(source)
    text = _read(file, source)
    try:
        data = read_yaml(text)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(source, exc) from exc
    except yaml.YAMLError as exc:
        raise configuration_error(source, [Problem("", f"invalid YAML: {exc}")]) from exc
    real = file.resolve()
    config = parse_config(data, source=source, base_dir=real.parent, environ=environ)
    return dataclasses.replace(config, source=real)


def _read(file: Path, source: str) -> str:
    problem: str
    cause: Exception
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        problem, cause = "file not found", exc
    except IsADirectoryError as exc:
        problem, cause = "is a directory, not a YAML file", exc
    except PermissionError as exc:
        problem, cause = "cannot read the file: permission denied", exc
    except UnicodeDecodeError as exc:
        problem, cause = f"is not UTF-8 text (byte {exc.start} cannot be decoded)", exc
    except OSError as exc:
        problem, cause = f"cannot read the file: {exc.strerror or exc}", exc
    raise configuration_error(source, [Problem("", problem)]) from cause


def _syntax_error(source: str, exc: yaml.MarkedYAMLError) -> Exception:
    """Turn PyYAML's multi-line report into one line that leads with where the problem is."""
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "cannot be parsed"
    if exc.context and exc.problem and exc.context_mark is not None:
        problem += f" ({exc.context} started at line {exc.context_mark.line + 1})"
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    error = configuration_error(source, [Problem("", f"{where}invalid YAML: {problem}")])
    if mark is not None:
        error.details.update(line=mark.line + 1, column=mark.column + 1)
    return error
