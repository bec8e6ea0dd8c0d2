-- 0005_silences: alert silences, and what they did to alerts.
-- Rules as in 0001_init.sql.
--
-- A silence mutes the notifications of matching alerts from starts_at to
-- ends_at (alerting/silences.ts); the alerter holds the ones not over in
-- memory and reloads them from here at start, so they survive a restart.
-- Every change (creation, early expiry) writes the whole row again with a
-- higher updated_at; the replacing engine keeps the newest, reads use FINAL.
-- Not partitioned, like alerts: FINAL only collapses rows within a partition,
-- and the table stays small.
CREATE TABLE IF NOT EXISTS {db}.silences
(
    silence_id        String,
    tenant            Nullable(String),       -- NULL: every tenant
    -- Matchers; '' / [] when not given (a silence has at least one).
    match_policy_id   String,                 -- glob (core/glob.ts)
    match_policy_type LowCardinality(String),
    match_agent_id    String,                 -- glob
    match_severity    Array(LowCardinality(String)),
    starts_at         DateTime64(3, 'UTC'),
    ends_at           DateTime64(3, 'UTC'),
    comment           String,
    created_by        String,
    created_at        DateTime64(3, 'UTC'),
    expired_at        Nullable(DateTime64(3, 'UTC')), -- NULL unless ended early
    expired_by        String,
    updated_at        DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY silence_id;

-- The silence that muted an alert's latest verdict change ('' when none), and
-- the note of its latest acknowledge or resolve. ADD COLUMN only changes
-- metadata: alerts stored before this migration read the DEFAULT.
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS silenced_by String DEFAULT '' AFTER source_offset;
ALTER TABLE {db}.alerts ADD COLUMN IF NOT EXISTS comment String DEFAULT '' AFTER silenced_by;
