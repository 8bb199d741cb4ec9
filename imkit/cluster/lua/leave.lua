-- leave.lua: a user left.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid. A user left: released and announced offline; a kick or
-- mute held for it is done with.
release(ARGV[2] .. '/' .. ARGV[3], true)
redis.call('HDEL', node_held(ARGV[2]), ARGV[3])
return 1
