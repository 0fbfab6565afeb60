-- A run's effective configuration is usually shared by many runs (every run of a batch,
-- every run of a definition version without overrides). Store each distinct one once,
-- addressed by a hash of its content, instead of one jsonb copy per run: a batch submit
-- then parses and writes a few documents, not one per run.
CREATE TABLE run_configs (
    id      bytea NOT NULL,
    config  jsonb NOT NULL,
    secrets jsonb NOT NULL,
    CONSTRAINT run_configs_pkey PRIMARY KEY (id)
);

INSERT INTO run_configs (id, config, secrets)
SELECT DISTINCT ON (h) h, config, secrets
FROM (SELECT sha256(convert_to(config::text || secrets::text, 'UTF8')) AS h, config, secrets
      FROM run_specs) AS existing;

ALTER TABLE run_specs ADD COLUMN config_id bytea;
UPDATE run_specs SET config_id = sha256(convert_to(config::text || secrets::text, 'UTF8'));
ALTER TABLE run_specs ALTER COLUMN config_id SET NOT NULL;
ALTER TABLE run_specs DROP COLUMN config;
ALTER TABLE run_specs DROP COLUMN secrets;
