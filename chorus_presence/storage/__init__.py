"""SQLite storage: the database, its migrations and one repository per aggregate."""
