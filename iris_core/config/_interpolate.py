"""``${VAR}`` substitution in configuration values.

The grammar is deliberately small, so a reader of ``config.yaml`` can predict every result:

* ``${VAR}`` is replaced by the variable; an unset variable is an error, because a silently empty path or
  port is a worse failure than a refusal to start.
* ``${VAR:-default}`` uses ``default`` when the variable is unset *or empty*, as the shell does.
* ``$$`` is a literal ``$``. Any other ``$`` (``$HOME``, ``$5``) is kept as written, so prices and regexes
  survive without escaping.

When a whole scalar is one expression, the substituted text is also read as a YAML scalar, so
``maxProcesses: ${MAX:-4}`` yields the integer 4 exactly as ``maxProcesses: 4`` would.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import yaml

from ._yaml import ConfigLoader

__all__ = ["InterpolationError", "Substitution", "substitute"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WHOLE = re.compile(r"\$\{[^}]*\}")


class InterpolationError(ValueError):
    """A value's ``${...}`` cannot be substituted; the message says why, without the key path."""


@dataclass(frozen=True, slots=True)
class Substitution:
    """The result of substituting one string scalar."""

    text: str
    """The substituted string; what string-typed fields use, so ``"${TAG}"`` with TAG=007 stays "007"."""
    value: object
    """The typed value: ``text`` read as a YAML scalar when the scalar was one ``${...}``, else ``text``."""
    original: str
    """The scalar as written in the file, for error messages."""

    @property
    def changed(self) -> bool:
        """Whether substitution changed anything, i.e. whether ``original`` is worth showing in an error."""
        return self.text != self.original


def substitute(raw: str, environ: Mapping[str, str]) -> Substitution:
    """Substitute every ``${...}`` and ``$$`` in ``raw``.

    Raises:
        InterpolationError: a variable is unset without a default, or an expression is malformed.

    """
    if "$" not in raw:
        return Substitution(raw, raw, raw)
    text = _expand(raw, environ)
    if _WHOLE.fullmatch(raw):
        return Substitution(text, _as_yaml_scalar(text), raw)
    return Substitution(text, text, raw)


def _expand(raw: str, environ: Mapping[str, str]) -> str:
    out: list[str] = []
    i = 0
    while (dollar := raw.find("$", i)) != -1:
        out.append(raw[i:dollar])
        following = raw[dollar + 1 : dollar + 2]
        if following == "$":
            out.append("$")
            i = dollar + 2
        elif following == "{":
            end = raw.find("}", dollar)
            if end == -1:
                raise InterpolationError('"${" has no closing "}" (write $$ for a literal $)')
            out.append(_evaluate(raw[dollar + 2 : end], environ))
            i = end + 1
        else:
            out.append("$")
            i = dollar + 1
    out.append(raw[i:])
    return "".join(out)


def _evaluate(expression: str, environ: Mapping[str, str]) -> str:
    name, separator, default = expression.partition(":-")
    if "${" in expression:
        raise InterpolationError(f"nested ${{...}} is not supported in ${{{expression}}}")
    if not _NAME.fullmatch(name):
        raise InterpolationError(
            f"${{{expression}}} is not a valid expression; use ${{VAR}} or ${{VAR:-default}}, "
            "where VAR is letters, digits and underscores"
        )
    value = environ.get(name)
    if separator:
        return value if value else default
    if value is None:
        raise InterpolationError(
            f"environment variable {name} is not set (write ${{{name}:-default}} to give a default)"
        )
    return value


def _as_yaml_scalar(text: str) -> object:
    """Read ``text`` as YAML would read it in the file, keeping it as text if it is not a plain scalar."""
    try:
        value: object = yaml.load(text, Loader=ConfigLoader)
    except yaml.YAMLError:
        return text
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return text
