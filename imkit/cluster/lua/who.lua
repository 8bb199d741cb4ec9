-- who.lua: everyone online (or everyone in the lobby).
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, and '1' for the lobby's members only (a user's `who`; the
-- administrator's lists everyone). A list of the conns' JSON records.
local all = redis.call('HVALS', CONNS)
if ARGV[2] ~= '1' or tonumber(redis.call('HGET', META, 'outside') or '0') <= 0 then
  return all
end
local inside = {}
for _, raw in ipairs(all) do
  if cjson.decode(raw).lobby ~= false then table.insert(inside, raw) end
end
return inside
