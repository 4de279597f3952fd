"""Private instances of the database engines the tests run against, started from the binaries
the system's packages install, never a system-wide service."""
