-- Migration 8 sealed every stored secret (SET NOT NULL fails if a row was missed). The
-- row versions that held plaintext before it are dead and go with the next VACUUM.
ALTER TABLE definition_versions DROP COLUMN secrets;
ALTER TABLE definition_versions ALTER COLUMN sealed_secrets SET NOT NULL;
ALTER TABLE run_configs DROP COLUMN secrets;
ALTER TABLE run_configs ALTER COLUMN sealed_secrets SET NOT NULL;
