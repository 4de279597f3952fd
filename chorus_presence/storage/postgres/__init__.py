"""The PostgreSQL storage backend: the storage interfaces on a shared PostgreSQL database.

Several server processes (the nodes of a cluster) may use one database at once. Every write is
one transaction that first takes the advisory lock of each user whose rows it changes, in one
fixed order (`pool.Pool.transaction`), so concurrent changes to the same users serialise and
never deadlock. The schema is this package's own numbered migrations (`schema`).
"""
