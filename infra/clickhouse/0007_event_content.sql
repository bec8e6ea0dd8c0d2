-- 0007_event_content: event payloads, stored only when the privacy settings say so.
-- Rules as in 0001_init.sql.
--
-- `content.input` and `content.output` of an event. Both stay '' unless
-- `privacy.store_raw_payloads` is on; with `privacy.redact_outputs` (the
-- default) they hold the text with every sensitive match replaced by
-- `[REDACTED:<kind>]` (storage/clickhouse/retention.ts). Two columns rather
-- than one JSON string so a query reads only the side it needs. ZSTD because
-- prompts and responses are long, repetitive text read rarely. ADD COLUMN only
-- changes metadata: events stored before this migration read ''.
--
-- Retention is not set here: TTLs follow the configuration and are applied at
-- every start by applyRetention (storage/clickhouse/retention.ts).
ALTER TABLE {db}.events ADD COLUMN IF NOT EXISTS content_input String DEFAULT '' CODEC(ZSTD(3)) AFTER attributes;
ALTER TABLE {db}.events ADD COLUMN IF NOT EXISTS content_output String DEFAULT '' CODEC(ZSTD(3)) AFTER content_input;
