"""PostgreSQL access: migrations, the connection pool and the typed queries."""
