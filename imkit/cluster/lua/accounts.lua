-- accounts.lua: every account.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, mail cutoff (msgid number). Every account: its JSON and how many
-- messages wait for it (within the cutoff), flat.
local result = {}
local all = redis.call('HGETALL', ACCOUNTS)
local cutoff = tonumber(ARGV[2])
for i = 1, #all, 2 do
  local box = mailbox(all[i])
  local waiting = redis.call('LLEN', box)
  for n = 0, waiting - 1 do
    if tonumber(cjson.decode(redis.call('LINDEX', box, n)).msgid) >= cutoff then break end
    waiting = waiting - 1
  end
  table.insert(result, all[i + 1])
  table.insert(result, waiting)
end
return result
