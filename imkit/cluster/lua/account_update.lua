-- account_update.lua: an account's fields change.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, account key, the fields to change as JSON (Account.fields names: a
-- password, a mute). Only those change, so that changes made at once never undo one
-- another: {'ok'}, or {'none'} when there is no such account (removed meanwhile).
local raw = redis.call('HGET', ACCOUNTS, ARGV[2])
if not raw then return {'none'} end
local account = cjson.decode(raw)
for field, value in pairs(cjson.decode(ARGV[3])) do account[field] = value end
redis.call('HSET', ACCOUNTS, ARGV[2], cjson.encode(account))
return {'ok'}
