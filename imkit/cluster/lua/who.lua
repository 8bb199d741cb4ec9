-- who.lua: everyone online.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix. Everyone online: a list of the conns' JSON records.
return redis.call('HVALS', CONNS)
