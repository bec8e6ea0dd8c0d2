--[[
  valueSnapshot(key, argv, at, ttlMs), called by apply-1.lua (opcode 'v'): the
  Redis side of ValueSnapshotOp (core/state.ts); the reference is the memory store.

  Input:
    key           hash of one (agent, policy, part): fields a approved value,
                  t time it was approved (ms, text), l last value seen — absent
                  while it equals the approved value (the usual case: a value
                  as long as a capability set is then stored once), r the
                  value an administrator rejected and rt when (ms, text) —
                  both absent when none (written by ops/value-review.lua)
    argv[at .. at + 2]  partition, offset, committed offset
    argv[at + 3]  event time (ms)
    argv[at + 4]  value
    argv[at + 5]  autoApprove (1 or 0)
    ttlMs         unused: apply-1.lua sets the key's idle TTL after the call

  Returns { flags, approved, previous, approvedAt, rejected, rejectedAt }: the
  state before the operation, false where there is none (first sight).
]]

local function valueSnapshot(key, argv, at, ttlMs)
  local partition = tonumber(argv[at])
  local offset = tonumber(argv[at + 1])
  local committed = tonumber(argv[at + 2])
  local ts = tonumber(argv[at + 3])
  local value = argv[at + 4]
  local autoApprove = argv[at + 5] == '1'

  local log = replayLogOpen(key, partition, offset)
  if log.stored then
    local copy = replayCopy(log.stored)
    if copy[3] == true then
      copy[3] = copy[2]
    end
    if #copy == 4 then
      -- Logged before rejections existed: there was none.
      copy[5], copy[6] = false, false
    elseif copy[5] == true then
      copy[5] = copy[3]
    end
    return copy
  end
  local fields = redis.call('HMGET', key, 'a', 't', 'l', 'r', 'rt')
  local approved, approvedAt = fields[1] or false, fields[2] or false
  local last = fields[3] or approved
  local rejected, rejectedAt = fields[4] or false, fields[5] or false
  if log.replay then
    return { 3, approved, last, approvedAt, rejected, rejectedAt }
  end
  local newApproved = approved
  local writes = {}
  if not approved or (autoApprove and approved ~= value) then
    newApproved = value
    writes[#writes + 1], writes[#writes + 2], writes[#writes + 3], writes[#writes + 4] = 'a', value, 't', numText(ts)
  end
  local deleteLast = false
  if value == newApproved then
    deleteLast = fields[3] ~= false
  else
    writes[#writes + 1], writes[#writes + 2] = 'l', value
  end
  local r = { 0, approved, last, approvedAt, rejected, rejectedAt }
  -- The log keeps `previous` as `true` when it equals `approved`, and
  -- `rejected` as `true` when it equals `previous` (a long value stored once).
  replayLogRecord(log, partition, offset, committed, {
    0,
    approved,
    last == approved and approved and true or last,
    approvedAt,
    rejected == last and rejected and true or rejected,
    rejectedAt,
  })
  if #writes > 0 then
    redis.call('HSET', key, unpack(writes))
  end
  if deleteLast then
    redis.call('HDEL', key, 'l')
  end
  return r
end
