-- account_add.lua: a new account.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, account key, the account as JSON, character keys (JSON). A new account:
-- {'exists', name} when there is one of that name already; else {'ok', renamed}, where
-- renamed is the new name of the guest who held the name ('' when none did).
local key = ARGV[2]
local existing = redis.call('HGET', ACCOUNTS, key)
if existing then return {'exists', cjson.decode(existing).name} end
redis.call('HSET', ACCOUNTS, key, ARGV[3])
local holder = redis.call('HGET', NAMES, key)
if not holder then return {'ok', ''} end
local h = load_conn(holder)
if not h then
  redis.call('HDEL', NAMES, key)
  return {'ok', ''}
end
if h.account then return {'ok', ''} end
return {'ok', evict_guest(holder, h, cjson.decode(ARGV[4])) or ''}
