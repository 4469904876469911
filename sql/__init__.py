"""The warehouse's SQL, shipped as package data: `migrations/` (versioned DDL, applied once each
in order), `views/` (one analyst view per file) and `queries/` (read queries the code runs by
name). `pipeline.warehouse` finds them with `importlib.resources.files("sql")`."""
