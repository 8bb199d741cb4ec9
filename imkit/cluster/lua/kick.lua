-- kick.lua: an administrator's kick.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, name key, reason. Asks the user's node to remove it (the 'k' event; the
-- scripts of accounts add ``bye``, a reason of imkit.hub's: replaced, account_removed),
-- and holds the kick until the user has left: a node that is silent now may be declared
-- dead, its stream deleted with the event, and come back; its register.lua then applies the
-- kick instead of bringing the user back. {'ok', name, addr, node, ms since the node's
-- last beat} or {'none'}.
local conn = redis.call('HGET', NAMES, ARGV[2])
if not conn then return {'none'} end
local c = load_conn(conn)
local node, mid = conn_node(conn)
emit(node_log(node), {t = 'k', mid = mid, reason = ARGV[3]})
hold(node, mid, {t = 'k', reason = ARGV[3]})
local beat = redis.call('ZSCORE', NODES, node)
local silent = beat and now_ms() - tonumber(beat) or -1
return {'ok', c and c.name or '', c and c.addr or '', node, silent}
