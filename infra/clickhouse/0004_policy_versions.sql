-- 0004_policy_versions: every version of the policy document the API manages.
-- Rules as in 0001_init.sql.
--
-- Version 1 is seeded from the policy file at the first start; every change
-- (through the API, or an edit of the file) appends the next version with the
-- whole document, so any version can be restored. Rows are never updated.
-- `document` is the document as JSON (packs stay `include: [pack:…]`
-- references); `changed` lists the policy ids whose definition differs from
-- the previous version; `file_sha256` is the hash of the policy file the
-- lineage last took in, so a file edited while the process was down is
-- noticed at the next start.
CREATE TABLE IF NOT EXISTS {db}.policy_versions
(
    version     UInt32,
    created_at  DateTime64(3, 'UTC'),
    author      String,
    action      LowCardinality(String),
    comment     String,
    changed     Array(String),
    mode        LowCardinality(String),
    document    String,
    sha256      String,
    file_sha256 String
)
ENGINE = ReplacingMergeTree
ORDER BY version;
