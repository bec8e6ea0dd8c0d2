--[[
  Replay results of one window key, kept while their offsets can be delivered again.

  Encoding (one hash field, appended to once per positioned operation):
    entry   = <delta> "," <code> [ "," <stats> ] ";"
    delta   = offset minus the previous entry's offset; the first entry's delta
              is 0 and its offset is held separately ("first offset")
    code    = count * 2 + late
    stats   = the baseline text ("<windows>:<median>:<mad>"), present on the
              first entry and wherever it changed since the previous entry;
              an entry without it has the stats of the nearest entry before it
  Offsets only grow on one partition, so deltas are small and positive: a few
  bytes per entry.
]]

-- The entry at `target`: its code and stats text, or nil when it is not kept.
local function findReplayResult(results, firstOffset, target)
  local pos, at, stats = 1, firstOffset, ''
  while true do
    local s, e, delta, code, entryStats = string.find(results, '^(%d+),(%d+)([^;]*);', pos)
    if not s then
      return nil
    end
    at = at + tonumber(delta)
    if entryStats ~= '' then
      stats = string.sub(entryStats, 2)
    end
    if at == target then
      return tonumber(code), stats
    end
    if at > target then
      return nil
    end
    pos = e + 1
  end
end

-- Drops entries below `committed`: returns the remaining results and the new
-- first offset. The new first entry is rewritten to delta 0 and given the stats
-- in force, so the encoding rules hold again. Each entry is walked over once
-- before it is dropped, so pruning costs O(1) amortised per operation.
local function pruneReplayResults(results, firstOffset, committed)
  local pos, at, stats = 1, firstOffset, ''
  while true do
    local s, e, delta, code, entryStats = string.find(results, '^(%d+),(%d+)([^;]*);', pos)
    if not s then
      return '', 0
    end
    at = at + tonumber(delta)
    if entryStats ~= '' then
      stats = entryStats
    end
    if at >= committed then
      if pos == 1 then
        return results, firstOffset
      end
      return '0,' .. code .. stats .. ';' .. string.sub(results, e + 1), at
    end
    pos = e + 1
  end
end
