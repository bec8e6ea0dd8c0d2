--[[
  Replay results of one window key, kept while their offsets can be delivered again.

  Encoding (one binary hash field, appended to once per positioned operation):
    entry  = varint(delta) varint(word) [ byte(#stats) stats ]
    delta  = offset minus the previous entry's offset; the first entry's delta
             is 0 and its offset is kept in the state struct ("first offset")
    word   = (count * 2 + late) * 2 + 1 if stats follow, else 0
    stats  = the baseline text ("<windows>:<median>:<mad>"), present on the
             first entry and wherever it changed since the previous entry; an
             entry without it has the stats of the nearest entry before it
    varint = little-endian base-128, high bit set on every byte but the last
  Offsets only grow on one partition, so deltas are small: an entry is three or
  four bytes, and a batch of 300 events of one agent keeps about 1 KiB until the
  next batch prunes it.
]]

local function encodeVarint(n)
  if n < 128 then
    return string.char(n)
  end
  local bytes = {}
  while n >= 128 do
    bytes[#bytes + 1] = 128 + n % 128
    n = math.floor(n / 128)
  end
  bytes[#bytes + 1] = n
  return string.char(unpack(bytes))
end

-- The value at `pos` and the position after it (nil at the end of the string).
local function decodeVarint(s, pos)
  local n, scale = 0, 1
  while true do
    local b = string.byte(s, pos)
    if not b then
      return nil, pos
    end
    pos = pos + 1
    if b < 128 then
      return n + b * scale, pos
    end
    n = n + (b - 128) * scale
    scale = scale * 128
  end
end

-- One entry at `pos`: delta, code (count * 2 + late), its stats or nil, the position after it.
local function decodeReplayEntry(s, pos)
  local delta
  delta, pos = decodeVarint(s, pos)
  if not delta then
    return nil
  end
  local word
  word, pos = decodeVarint(s, pos)
  local stats = nil
  if word % 2 == 1 then
    local length = string.byte(s, pos)
    stats = string.sub(s, pos + 1, pos + length)
    pos = pos + 1 + length
  end
  return delta, math.floor(word / 2), stats, pos
end

local function encodeReplayEntry(delta, code, stats)
  if stats then
    return encodeVarint(delta) .. encodeVarint(code * 2 + 1) .. string.char(#stats) .. stats
  end
  return encodeVarint(delta) .. encodeVarint(code * 2)
end

-- The entry at offset `target`: its code and stats text, or nil when it is not kept.
local function findReplayResult(results, firstOffset, target)
  local pos, at, stats = 1, firstOffset, ''
  while true do
    local delta, code, entryStats, nextPos = decodeReplayEntry(results, pos)
    if not delta then
      return nil
    end
    at = at + delta
    if entryStats then
      stats = entryStats
    end
    if at == target then
      return code, stats
    end
    if at > target then
      return nil
    end
    pos = nextPos
  end
end

-- Drops entries below `committed`: returns the remaining results and the new
-- first offset. The new first entry is rewritten with delta 0 and the stats in
-- force, so the encoding rules hold again. Each entry is walked over once
-- before it is dropped, so pruning costs O(1) amortised per operation.
local function pruneReplayResults(results, firstOffset, committed)
  local pos, at, stats = 1, firstOffset, ''
  while true do
    local delta, code, entryStats, nextPos = decodeReplayEntry(results, pos)
    if not delta then
      return '', 0
    end
    at = at + delta
    if entryStats then
      stats = entryStats
    end
    if at >= committed then
      if pos == 1 then
        return results, firstOffset
      end
      return encodeReplayEntry(0, code, stats ~= '' and stats or nil) .. string.sub(results, nextPos), at
    end
    pos = nextPos
  end
end
