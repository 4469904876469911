"""Where the SQL files live: the `sql` package's data, in a source tree or an installed wheel.

`sql/migrations/NNN_name.sql` (DDL, applied once each), `sql/views/NAME.sql` (one analyst view
each) and `sql/queries/NAME.sql` (read queries other modules run by name) ship inside the `sql`
package, so `importlib.resources` finds them whether the project is installed editable, from a
wheel or imported from a checkout.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

SQL_DIR: Traversable = files("sql")
MIGRATIONS_DIR: Traversable = SQL_DIR / "migrations"
VIEWS_DIR: Traversable = SQL_DIR / "views"
QUERIES_DIR: Traversable = SQL_DIR / "queries"

_SUFFIX = ".sql"


def sql_files(folder: Traversable) -> list[Traversable]:
    """The `.sql` files of a folder, sorted by name."""
    return sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(_SUFFIX)),
        key=lambda entry: entry.name,
    )


def stem(file: Traversable) -> str:
    """A SQL file's name without `.sql`: `001_core_tables.sql` -> `001_core_tables`."""
    return file.name.removesuffix(_SUFFIX)


def statement(file: Traversable) -> str:
    """A file's SQL text without surrounding blank space or a trailing semicolon."""
    return file.read_text(encoding="utf-8").strip().rstrip(";")
