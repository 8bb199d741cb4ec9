-- mail_done.lua: kept messages written to their account's client leave its mailbox.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, account key, msgid. The kept messages up to that msgid were written to
-- the account's client: they leave its mailbox (msgids are compared as strings: all
-- have 16 digits). {'ok', how many are left}.
local box, last = mailbox(ARGV[2]), ARGV[3]
while true do
  local first = redis.call('LINDEX', box, 0)
  if not first or cjson.decode(first).msgid > last then break end
  redis.call('LPOP', box)
end
return {'ok', redis.call('LLEN', box)}
