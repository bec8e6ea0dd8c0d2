-- 0001_init: the tables of ARCHITECTURE.md, "Storage (ClickHouse)".
--
-- Rules for every migration file (storage/clickhouse/migrations.ts applies them):
-- * `{db}` stands for the configured database (a validated identifier).
-- * Each statement ends with `;` at the end of a line.
-- * Each statement is idempotent (IF NOT EXISTS, ...): a migration that failed
--   half-way is not recorded and runs again from its first statement, and two
--   processes starting at once may both apply it.
-- * An applied file is never edited (its checksum is recorded); add a new version.
--
-- Times are DateTime64(3, 'UTC'); inserts send epoch milliseconds as JSON
-- integers, which ClickHouse reads as scaled ticks (exact to the millisecond).
-- Replays are harmless because every table a replay can reach is a replacing
-- table whose sorting key is the record's identity.

-- One row per accepted event. `content` (prompt/response text) is never stored.
-- The partition and sorting keys only use fields a replay repeats unchanged, so
-- a replayed event lands in the same partition and collapses with the original.
CREATE TABLE IF NOT EXISTS {db}.events
(
    event_id         String,
    time             DateTime64(3, 'UTC'),
    tenant           LowCardinality(String),
    agent_id         String,
    agent_name       String,
    agent_type       LowCardinality(String),
    agent_version    String,
    type             LowCardinality(String),
    action           String,
    resource         String,
    source_ip        String,
    source_host      String,
    source_user      String,
    tool_name        String,
    tool_server      String,
    tool_version     String,
    mcp_server_id    String,
    mcp_url          String,
    mcp_trust_score  Nullable(Float64),
    mcp_tools        Array(String),
    mcp_capabilities Array(String),
    capabilities     Array(String),
    key_fingerprint  String,
    key_algorithm    LowCardinality(String),
    network_domain   String,
    network_url      String,
    network_method   LowCardinality(String),
    network_ip       String,
    network_port     Nullable(UInt16),
    outcome          LowCardinality(String),
    duration_ms      Nullable(Float64),
    attributes       Map(String, String),
    ingested_at      DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (tenant, toDate(time), agent_id, event_id);

-- One row per (event, policy) judgement; verdict_id is derived from
-- tenant + event_id + policy_id, so a replayed verdict replaces itself.
CREATE TABLE IF NOT EXISTS {db}.verdicts
(
    verdict_id   String,
    event_id     String,
    time         DateTime64(3, 'UTC'),
    tenant       LowCardinality(String),
    agent_id     String,
    agent_name   String,
    event_type   LowCardinality(String),
    policy_id    String,
    policy_type  LowCardinality(String),
    severity     LowCardinality(String),
    action       LowCardinality(String),
    decision     LowCardinality(String),
    would_decide LowCardinality(String),
    mode         LowCardinality(String),
    reason       String,
    evidence     String, -- JSON object of string | number | boolean values
    atlas        Array(String),
    late         Bool
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (tenant, toDate(time), verdict_id);

-- One row per evaluated event, hash-chained per tenant. (tenant, seq) is the
-- chain position; the partition uses the event time, which a replay repeats.
CREATE TABLE IF NOT EXISTS {db}.audit_log
(
    event_id         String,
    time             DateTime64(3, 'UTC'),
    tenant           LowCardinality(String),
    bus_partition    Int32,
    agent_id         String,
    event_type       LowCardinality(String),
    decision         LowCardinality(String),
    would_decide     LowCardinality(String),
    mode             LowCardinality(String),
    matched_policies Array(String),
    verdict_ids      Array(String),
    policy_version   String,
    evaluated_at     DateTime64(3, 'UTC'),
    seq              UInt64,
    prev_hash        String,
    hash             String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (tenant, bus_partition, seq);

-- Every lifecycle change writes the alert's full row again; the replacing
-- engine keeps the one with the highest updated_at. Not partitioned: FINAL
-- only collapses rows within a partition, and the table stays small.
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    alert_id        String,
    tenant          LowCardinality(String),
    policy_id       String,
    policy_type     LowCardinality(String),
    agent_id        String,
    severity        LowCardinality(String),
    status          LowCardinality(String),
    count           UInt64,
    first_seen      DateTime64(3, 'UTC'),
    last_seen       DateTime64(3, 'UTC'),
    title           String,
    reason          String,
    verdict_ids     Array(String),
    evidence        String, -- JSON object of string | number | boolean values
    atlas           Array(String),
    updated_at      DateTime64(3, 'UTC'),
    acknowledged_by String,
    resolved_at     DateTime64(3, 'UTC'), -- epoch 0 while not resolved
    -- Bus position of the newest verdict counted (one agent's verdicts share a partition):
    -- a verdict replayed at or below it after a crash is not counted again.
    source_partition Int32,
    source_offset    Int64
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant, alert_id);

-- Input that could not be accepted; append-only.
CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    id          String,
    received_at DateTime64(3, 'UTC'),
    source      String,
    reason      String,
    raw         String,
    raw_bytes   UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY received_at;
