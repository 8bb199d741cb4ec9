-- unban.lua: a ban is lifted.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, target. {'none'} when there is no such ban.
if redis.call('HDEL', P .. ':bans', ARGV[2]) == 0 then return {'none'} end
emit(LOG, {t = 'unban', target = ARGV[2]})
return {'ok'}
