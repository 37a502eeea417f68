"""``python -m iris_app.readme_table README.md``: write the contract's permission table into the README.

Run by ``make gen``, so the table can never drift from the contract (a test checks it too). A module of its
own, so running it never re-imports a module the package already loaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

from iris_grpc.method_permissions import README_BEGIN, README_END, permissions_table

__all__ = ["write_readme_table"]


def write_readme_table(readme: Path) -> None:
    """Replace the table between the permission markers of ``readme`` with the one the contract gives."""
    text = readme.read_text()
    before, begin, rest = text.partition(README_BEGIN)
    _, end, after = rest.partition(README_END)
    if not begin or not end:
        raise RuntimeError(f"{readme} has no {README_BEGIN} ... {README_END} markers")
    readme.write_text(f"{before}{README_BEGIN}\n{permissions_table()}\n{README_END}{after}")


if __name__ == "__main__":
    write_readme_table(Path(sys.argv[1] if len(sys.argv) > 1 else "README.md"))
