-- account_remove.lua: an account is removed.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, account key, mail cutoff (msgid number). The account is removed with its
-- waiting messages, those it sent that wait for other accounts, and its conversations;
-- its user, if one is logged in, is told (bye 'account_removed') and goes. {'none'} or
-- {'ok', name, logged out (0 or 1), waiting messages discarded}.
local key = ARGV[2]
local raw = redis.call('HGET', ACCOUNTS, key)
if not raw then return {'none'} end
redis.call('HDEL', ACCOUNTS, key)
local box = mailbox(key)
local discarded = trim_mail(box, tonumber(ARGV[3]))
redis.call('DEL', box)
local index = P .. ':convs:' .. key
local others = redis.call('HGETALL', index)
local name = cjson.decode(raw).name
for i = 1, #others, 2 do
  redis.call('DEL', P .. ':conv:' .. others[i + 1])
  redis.call('HDEL', P .. ':convs:' .. others[i], key)
  -- What it sent that still waits for the other account goes too: whoever is given the
  -- name next must not be taken for its sender (every message from an account to an
  -- account is in this index). Messages kept before 'ak' existed match by the name.
  local other = mailbox(others[i])
  local entries = redis.call('LRANGE', other, 0, -1)
  local kept = {}
  for _, entry in ipairs(entries) do
    local m = cjson.decode(entry)
    if not (m.ak == key or (m.ak == nil and m.account == name)) then
      table.insert(kept, entry)
    end
  end
  if #kept < #entries then
    redis.call('DEL', other)
    if #kept > 0 then redis.call('RPUSH', other, unpack(kept)) end
  end
end
redis.call('DEL', index)
local logged_out = 0
local holder = redis.call('HGET', NAMES, key)
if holder then
  local h = load_conn(holder)
  if h and h.account then
    log_out(holder, 'account_removed')
    logged_out = 1
  end
end
return {'ok', name, logged_out, discarded}
