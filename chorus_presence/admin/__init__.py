"""Administration: every admin command as a plain async function over a `ServerContext`.

While the server runs, the admin channel (`server/admin_channel.py`) serves these commands to
the command line, so changes are live; while it is stopped, the command line runs the ones that
need only the database in-process, through the same functions.
"""
