-- ban.lua: an administrator's ban.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, target, the ban as JSON. Kept in P:bans and put in force on every node.
redis.call('HSET', P .. ':bans', ARGV[2], ARGV[3])
emit(LOG, {t = 'ban', ban = cjson.decode(ARGV[3])})
return {'ok'}
