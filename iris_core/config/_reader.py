"""Reading raw YAML values into typed ones, collecting every problem instead of stopping at the first.

A person fixing a config file wants the whole list at once, so a :class:`Reader` records each problem with
its key path and keeps going; :meth:`Reader.raise_if_any` turns the list into one
:class:`~iris_core.errors.ConfigurationError` with one ``file: key: problem`` line each.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from iris_core.errors import ConfigurationError

from ._interpolate import InterpolationError, Substitution, substitute

__all__ = ["Problem", "Reader", "configuration_error", "describe"]

_E = TypeVar("_E", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the file."""

    key: str
    """Dotted key path such as ``teams.backend.path``; empty for the file as a whole."""
    problem: str
    """What is wrong, phrased to be read after the key."""


def configuration_error(source: str, problems: list[Problem]) -> ConfigurationError:
    """Build the single error for ``problems``: one ``file: key: problem`` line each.

    ``details`` repeats the first problem as ``file``/``key``/``problem`` (the common, single-problem
    case) and lists all of them under ``problems``.
    """
    lines = [f"{source}: {p.key}: {p.problem}" if p.key else f"{source}: {p.problem}" for p in problems]
    first = problems[0]
    details: dict[str, object] = {
        "file": source,
        "key": first.key or None,
        "problem": first.problem,
        "problems": [{"key": p.key or None, "problem": p.problem} for p in problems],
    }
    return ConfigurationError("\n".join(lines), details=details)


def describe(value: object, limit: int | None = 60) -> str:
    """Show a raw value in an error: strings quoted and escaped, numbers as written, containers by kind.

    Strings are JSON-quoted so a control character in a value or team name cannot break the one-problem-
    per-line message.
    """
    if isinstance(value, str):
        shown = value if limit is None or len(value) <= limit else value[: limit - 1] + "…"
        return json.dumps(shown, ensure_ascii=False)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _got(raw: object, sub: Substitution | None) -> str:
    if sub is not None and sub.changed:
        return f"{describe(sub.text)} (from {describe(sub.original)})"
    return describe(raw)


@dataclass
class Reader:
    """Typed access to raw values that records problems under their key paths.

    Every getter returns ``default`` both when the key is absent or null and when its value is wrong, so
    validation can continue and report every problem in one pass. ``None`` means "not set" throughout:
    ``model: null`` and ``model: ${MODEL:-}`` both leave the default.
    """

    environ: Mapping[str, str]
    """Variables for ``${...}`` substitution."""
    problems: list[Problem] = field(default_factory=list)
    """Everything found wrong so far, in file order."""

    def add(self, key: str, problem: str) -> None:
        """Record a problem at ``key``."""
        self.problems.append(Problem(key, problem))

    def raise_if_any(self, source: str) -> None:
        """Raise everything recorded as one error.

        Raises:
            ConfigurationError: at least one problem was recorded.

        """
        if self.problems:
            raise configuration_error(source, self.problems)

    def mapping(self, key: str, raw: object, *, required: bool = False) -> Mapping[object, object] | None:
        """Return ``raw`` if it is a mapping; an empty section (``settings:`` alone) counts as empty."""
        if raw is None:
            if required:
                self.add(key, "is required and must be a mapping")
                return None
            return {}
        if isinstance(raw, Mapping):
            return raw
        self.add(key, f"expected a mapping, got {describe(raw)}")
        return None

    def check_keys(
        self, key: str, data: Mapping[object, object], known: Collection[str], *, refused: Mapping[str, str]
    ) -> None:
        """Report keys that are not in ``known``, suggesting the nearest known one.

        ``refused`` maps keys that the original iris-mcp defines but Iris does not support to the reason, so
        such a key
        gets that reason rather than a puzzling "unknown key".
        """
        for name in data:
            if not isinstance(name, str):
                self.add(key, f"keys must be strings, got {describe(name)}")
            elif name in refused:
                self.add(_join(key, name), refused[name])
            elif name not in known:
                self.add(_join(key, name), "unknown key" + _suggestion(name, known))

    def _substitute(self, key: str, raw: object) -> tuple[object, Substitution | None, bool]:
        """Return the typed value, its substitution, and whether substitution succeeded."""
        if not isinstance(raw, str):
            return raw, None, True
        try:
            sub = substitute(raw, self.environ)
        except InterpolationError as exc:
            self.add(key, str(exc))
            return None, None, False
        return sub.value, sub, True

    def integer(
        self, key: str, raw: object, default: int, *, minimum: int, maximum: int | None = None
    ) -> int:
        """Read an integer in ``[minimum, maximum]``; ``true`` is not 1 and ``1.0`` is not 1."""
        value, sub, ok = self._substitute(key, raw)
        if value is None:
            return default
        if isinstance(value, int) and not isinstance(value, bool):
            if value >= minimum and (maximum is None or value <= maximum):
                return value
        if ok:
            expected = f"an integer >= {minimum}" if maximum is None else f"an integer {minimum}..{maximum}"
            self.add(key, f"expected {expected}, got {_got(raw, sub)}")
        return default

    def usd(self, key: str, raw: object, default: float) -> float:
        """Read an amount of US dollars: a finite number >= 0 (an integer is fine; 0 means "no limit")."""
        value, sub, ok = self._substitute(key, raw)
        if value is None:
            return default
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value >= 0
        ):
            return float(value)
        if ok:
            self.add(key, f"expected an amount in USD >= 0, got {_got(raw, sub)}")
        return default

    def boolean(self, key: str, raw: object, default: bool) -> bool:
        """Read ``true`` or ``false``; a quoted ``"true"`` is refused so a typo cannot pass as a flag."""
        value, sub, ok = self._substitute(key, raw)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if ok:
            self.add(key, f"expected true or false, got {_got(raw, sub)}")
        return default

    def string(self, key: str, raw: object) -> str | None:
        """Read a string, or ``None`` if unset or empty; substituted text is used as is, never retyped."""
        value, sub, ok = self._substitute(key, raw)
        if value is None:
            return None
        if sub is not None:
            return sub.text or None
        if ok:
            self.add(key, f"expected a string, got {_got(raw, sub)}")
        return None

    def choice(self, key: str, raw: object, default: _E, *, booleans: Mapping[bool, _E]) -> _E:
        """Read a member of an enum by value; ``booleans`` says what YAML 1.1's bare yes/no/on/off mean."""
        enum = type(default)
        value, sub, ok = self._substitute(key, raw)
        if value is None:
            return default
        if sub is not None and sub.text in {member.value for member in enum}:
            return enum(sub.text)
        if isinstance(value, bool):
            return booleans[value]
        if ok:
            allowed = ", ".join(member.value for member in enum)
            self.add(key, f"expected one of {allowed}, got {_got(raw, sub)}")
        return default

    def strings(self, key: str, raw: object) -> tuple[str, ...]:
        """Read a list of non-empty strings; null is an empty list, a lone string is refused."""
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.add(key, f"expected a list of strings, got {describe(raw)}")
            return ()
        items: list[str] = []
        for index, item in enumerate(raw):
            item_key = f"{key}[{index}]"
            reported = len(self.problems)
            text = self.string(item_key, item)
            if text is not None:
                items.append(text)
            elif len(self.problems) == reported:
                self.add(item_key, f"expected a non-empty string, got {describe(item)}")
        return tuple(items)

    def environment(self, key: str, raw: object) -> dict[str, str]:
        """Read an environment mapping; scalar values become strings (``true`` → "true", null → "")."""
        data = self.mapping(key, raw)
        env: dict[str, str] = {}
        for name, value in (data or {}).items():
            if not isinstance(name, str):
                self.add(key, f"{describe(name)} is not a valid environment variable name; quote it")
                continue
            if not name or "=" in name or "\0" in name:
                self.add(key, f"{describe(name)} is not a valid environment variable name")
                continue
            item_key = _join(key, name)
            text = self._env_value(item_key, value)
            if text is None:
                continue
            if "\0" in text:
                self.add(item_key, "must not contain a NUL character")
            else:
                env[name] = text
        return env

    def _env_value(self, key: str, raw: object) -> str | None:
        if raw is None:
            return ""
        if isinstance(raw, bool):
            return "true" if raw else "false"
        if isinstance(raw, int | float):
            return str(raw)
        if isinstance(raw, str):
            _, sub, _ = self._substitute(key, raw)
            return sub.text if sub is not None else None
        self.add(key, f"expected a string, number or boolean, got {describe(raw)}")
        return None


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _suggestion(name: str, known: Collection[str]) -> str:
    """Name the known key ``name`` was probably meant to be, ignoring case, ``_`` and ``-``."""

    def fold(text: str) -> str:
        return text.lower().replace("_", "").replace("-", "")

    by_fold = {fold(k): k for k in known}
    if fold(name) in by_fold:
        return f" (did you mean {by_fold[fold(name)]}?)"
    close = difflib.get_close_matches(fold(name), list(by_fold), n=1, cutoff=0.6)
    return f" (did you mean {by_fold[close[0]]}?)" if close else ""
