"""Storage: one interface per aggregate, the factory that opens a backend, and the SQLite
backend (its database, migrations and repositories)."""
