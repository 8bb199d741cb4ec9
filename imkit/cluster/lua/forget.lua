-- forget.lua: messages deleted from the history.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, JSON list of msgid numbers (as strings). Deletes those messages from
-- P:hist (imkit history delete) and tells every node to drop them from its replay;
-- returns the numbers that were there.
local deleted = {}
for _, n in ipairs(cjson.decode(ARGV[2])) do
  local number = tonumber(n)
  local id = string.format('%.0f-%d', (number - number % 1000) / 1000, number % 1000)
  if redis.call('XDEL', P .. ':hist', id) == 1 then table.insert(deleted, n) end
end
if #deleted > 0 then emit(LOG, {t = 'forget', ids = deleted}) end
return deleted
