--[[
  valueReview(key, argv, at, ttlMs), called by apply-1.lua (opcode 'a'): the
  Redis side of ValueReviewOp (core/state.ts); the reference is the memory store.

  Input:
    key           the hash of a value_snapshot key (fields: ops/value-snapshot.lua)
    argv[at]      wall-clock time of the review (ms)
    argv[at + 1]  action: read, approve or reject
    argv[at + 2]  the value reviewed ("" for read)
    ttlMs         unused: apply-1.lua sets the key's idle TTL after the call,
                  if this function says it touched the key

  A review has no bus position: no replay log, no flags but 0. approve and
  reject apply only when the value is the last value seen (so never on a
  missing key, which is never created).

  Returns { 0, approved, last, approvedAt, rejected, rejectedAt, applied }
  (the state after the review, false where there is none; applied 1 or 0),
  and whether the key was touched (written): a read or an unapplied review
  must not restart, nor shorten, the key's TTL.
]]

local function valueReview(key, argv, at, ttlMs)
  local ts = tonumber(argv[at])
  local action = argv[at + 1]
  local value = argv[at + 2]

  local fields = redis.call('HMGET', key, 'a', 't', 'l', 'r', 'rt')
  local approved, approvedAt = fields[1] or false, fields[2] or false
  local last = fields[3] or approved
  local rejected, rejectedAt = fields[4] or false, fields[5] or false
  if action == 'read' or not last or last ~= value then
    return { 0, approved, last, approvedAt, rejected, rejectedAt, 0 }, false
  end
  if action == 'approve' then
    approved, approvedAt = value, numText(ts)
    redis.call('HSET', key, 'a', approved, 't', approvedAt)
    -- The last value is the approved one now: stored once.
    if fields[3] then
      redis.call('HDEL', key, 'l')
    end
    if rejected == value then
      rejected, rejectedAt = false, false
      redis.call('HDEL', key, 'r', 'rt')
    end
  else
    rejected, rejectedAt = value, numText(ts)
    redis.call('HSET', key, 'r', rejected, 'rt', rejectedAt)
  end
  return { 0, approved, last, approvedAt, rejected, rejectedAt, 1 }, true
end
