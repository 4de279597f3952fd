"""Administration: every admin command as a plain async function over a `Components`.

While the server runs, the admin channel (`admin/channel.py`) serves these commands to
the command line, so changes are live; while it is stopped, the command line runs the ones that
need only the database in-process, through the same functions.
"""
