--[[
  Applies a group of state operations whose keys share one hash tag (one agent,
  or one shared scope), in order, and returns one reply per operation. The Redis
  side of StateStore.applyStateOps (core/state.ts); the memory store is the
  reference and the state-store conformance suite holds the two together.
  Registered once as the ioredis command `awApply`; RedisStateStore sends one
  call per hash tag and all calls of a batch in one pipeline.

  Input:
    KEYS         the distinct keys of the group
    ARGV[1]      number of operations n
    then n operations, each: opcode, index into KEYS, idle TTL (ms) set again
    on every key the operation touches, then its arguments
      'w' window_count    8 arguments (ops/window-count.lua)
      'd' distinct_count 10 arguments (ops/distinct-count.lua)
      'f' first_seen      7 arguments (ops/first-seen.lua)
      't' token_bucket    6 arguments (ops/token-bucket.lua)
      'v' value_snapshot  6 arguments (ops/value-snapshot.lua)
      'a' value_review    3 arguments (ops/value-review.lua; no bus position)
      'r' recent_values   8 arguments (ops/recent-values.lua)
      'b' circuit        14 arguments (ops/circuit.lua)

  Returns an array of n replies, each the reply of its operation's function.
  Besides the keys in KEYS, writes the replay log of the call's hash tag
  (`<…>{tag}:_log`, includes/replay-log.lua), which shares their hash tag.

  An operation function may return a second value, false, when it left its
  key untouched (a review that changed nothing): the key's TTL is then not set.
]]

--- @include "includes/robust-stats"
--- @include "includes/replay-results"
--- @include "includes/replay-log"
--- @include "ops/window-count"
--- @include "ops/distinct-count"
--- @include "ops/first-seen"
--- @include "ops/token-bucket"
--- @include "ops/value-snapshot"
--- @include "ops/value-review"
--- @include "ops/recent-values"
--- @include "ops/circuit"

local OPS = {
  w = { windowCount, 8 },
  d = { distinctCount, 10 },
  f = { firstSeen, 7 },
  t = { tokenBucket, 6 },
  v = { valueSnapshot, 6 },
  a = { valueReview, 3 },
  r = { recentValues, 8 },
  b = { circuit, 14 },
}

local n = tonumber(ARGV[1])
local replies = {}
-- Every operation, replays included, restarts its key's idle clock: once per
-- key at the end, with the longest TTL any of its operations asked for (a
-- review only when it changed the key).
local ttls = {}
local at = 2
for i = 1, n do
  local op = OPS[ARGV[at]]
  if not op then
    return redis.error_reply('ERR agentwatch: unknown state operation code ' .. tostring(ARGV[at]))
  end
  local keyIndex = tonumber(ARGV[at + 1])
  local ttl = tonumber(ARGV[at + 2])
  local reply, touched = op[1](KEYS[keyIndex], ARGV, at + 3, ttl)
  replies[i] = reply
  -- window_count keeps its own log; a review keeps none.
  if ARGV[at] ~= 'w' and ARGV[at] ~= 'a' then
    replayLogTouch(ttl)
  end
  if touched ~= false and (not ttls[keyIndex] or ttl > ttls[keyIndex]) then
    ttls[keyIndex] = ttl
  end
  at = at + 3 + op[2]
end
for keyIndex, ttl in pairs(ttls) do
  redis.call('PEXPIRE', KEYS[keyIndex], ttl)
end
replayLogFlush()
return replies
