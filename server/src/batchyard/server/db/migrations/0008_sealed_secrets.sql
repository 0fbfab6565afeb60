-- Secrets at rest: the secrets of each definition version and run configuration become
-- one value sealed with the server's key (AES-256-GCM; batchyard.server.secrets_crypto),
-- in new bytea columns. Sealing needs the key, so it is not SQL: in this migration's
-- transaction the server seals the rows stored so far and clears their plaintext
-- (db/sealing.py, `seal_stored_secrets`), and gives run configurations new ids, a keyed
-- digest instead of a SHA-256 of the plaintext. Migration 9 drops the plaintext columns.
ALTER TABLE definition_versions ADD COLUMN sealed_secrets bytea;
ALTER TABLE definition_versions ALTER COLUMN secrets DROP NOT NULL;
ALTER TABLE run_configs ADD COLUMN sealed_secrets bytea;
ALTER TABLE run_configs ALTER COLUMN secrets DROP NOT NULL;
