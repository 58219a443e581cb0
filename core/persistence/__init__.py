"""Storage: sqlmodel tables, the engine for SQLite (default) or PostgreSQL, migrations."""
