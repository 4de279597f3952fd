"""Lets `python -m chorus_presence` run the admin command line."""

from chorus_presence.cli.main import main

raise SystemExit(main())
