-- name: database_exists
SELECT 1 FROM pg_database WHERE datname = $1;

-- name: create_service_database
-- The embedded server's database (the name is `embedded.DATABASE`).
CREATE DATABASE batchyard;

-- name: role_exists
SELECT 1 FROM pg_roles WHERE rolname = $1;

-- name: create_login_role
-- The statement that creates login role $1 with password $2 (utility statements take no
-- parameters: the caller executes the text this returns, names and literal quoted).
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text);

-- name: set_role_password
SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text);

-- name: create_owned_database
SELECT format('CREATE DATABASE %I OWNER %I', $1::text, $2::text);

-- name: revoke_public_connect
-- Only the service's own role may connect to the service's database.
SELECT format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', $1::text);
