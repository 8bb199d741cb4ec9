-- read_mark.lua: a node's place in P:log, and the slowest reader's.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, the count (N of SEQ-N) of the last P:log entry its reader read,
-- how long (ms) a node may go without beating and still be waited for.
-- Keeps each node's place in P:log (P:reads: node -> N) and the place of the slowest
-- reader that is waited for (P:meta low): a node that is gone is forgotten, one that
-- has not beaten for that long is not waited for. Returns how many entries that reader
-- is behind the last one written.
local node, now = ARGV[2], now_ms()
if redis.call('ZSCORE', NODES, node) then
  redis.call('ZADD', READS, tonumber(ARGV[3]), node)
end
local low
local marks = redis.call('ZRANGE', READS, 0, -1, 'WITHSCORES')
for i = 1, #marks, 2 do
  local beat = redis.call('ZSCORE', NODES, marks[i])
  if not beat then
    redis.call('ZREM', READS, marks[i])
  elseif now - tonumber(beat) <= tonumber(ARGV[4]) then
    low = tonumber(marks[i + 1])
    break
  end
end
if not low then
  redis.call('HDEL', META, 'low')
  return 0
end
redis.call('HSET', META, 'low', low)
local top = redis.call('HGET', META, 'last:' .. LOG) or '0-0'
return math.max(0, tonumber(string.match(top, '%d+$')) - low)
