-- name: database_exists
SELECT 1 FROM pg_database WHERE datname = $1;

-- name: create_service_database
-- The embedded server's database (the name is `embedded.DATABASE`).
CREATE DATABASE batchyard;
