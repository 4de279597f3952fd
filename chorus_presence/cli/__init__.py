"""The chorus-presence admin command line."""
