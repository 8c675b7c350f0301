"""The warehouse: connections, the migration runner, its migrations and database functions."""
