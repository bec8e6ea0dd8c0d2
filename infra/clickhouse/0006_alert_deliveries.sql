-- 0006_alert_deliveries: the outbox of alert notifications (alerting/delivery.ts).
-- Rules as in 0001_init.sql.
--
-- One row per notification of one alert to one configured sink. The alerter
-- writes it `pending` before the first attempt, and again after every
-- attempt with `version` one higher: `delivered` (never sent again),
-- `pending` with the next due time, or `failed` (dead-lettered). A
-- restart resumes the pending rows. notification_id is deterministic (alert
-- id, change, sink; reminders add their due time), so a verdict replayed
-- after a crash finds its notification here instead of making a second one.
--
-- The sink's URL and headers are not stored (they may hold secrets); they are
-- read from the configuration at each attempt. `alert` is the JSON of the
-- alert as it was when the notification was made, so a retry after a restart
-- sends the same content.
--
-- The sorting key starts with alert_id (notification_id is derived from it, so
-- the identity is the same) to make an alert's deliveries a range read. Not
-- partitioned, like alerts: FINAL only collapses rows within a partition.
-- No TTL, like the other tables: retention per data class is a change of its own.
CREATE TABLE IF NOT EXISTS {db}.alert_deliveries
(
    notification_id String,
    alert_id        String,
    tenant          LowCardinality(String),
    sink            LowCardinality(String),
    sink_kind       LowCardinality(String),   -- webhook | alertmanager | slack
    change          LowCardinality(String),   -- opened | escalated | resolved | reminder
    alert           String,                   -- JSON of the alert notified
    status          LowCardinality(String),   -- pending | delivered | failed
    attempts        UInt32,
    last_error      String,
    created_at      DateTime64(3, 'UTC'),
    next_attempt_at DateTime64(3, 'UTC'),
    delivered_at    DateTime64(3, 'UTC'),     -- epoch 0 until delivered
    updated_at      DateTime64(3, 'UTC'),
    version         UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (alert_id, notification_id);
