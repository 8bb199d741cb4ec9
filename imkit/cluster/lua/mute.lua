-- mute.lua: an administrator's mute (or unmute).
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, name key, until (seconds; '' while connected; '0' unmute), reason.
-- Asks the user's node to mute it, and holds the mute (as kick.lua does, unless a kick is
-- held already) for as long as the user is connected: a node that comes back after
-- being declared dead puts it in force again. {'ok', name, node, ms since the node's
-- last beat} or {'none'}.
local conn = redis.call('HGET', NAMES, ARGV[2])
if not conn then return {'none'} end
local c = load_conn(conn)
local node, mid = conn_node(conn)
emit(node_log(node), {t = 'mute', mid = mid, ['until'] = ARGV[3], reason = ARGV[4]})
local held = redis.call('HGET', node_held(node), mid)
if not (held and cjson.decode(held).t == 'k') then
  hold(node, mid, {t = 'mute', ['until'] = ARGV[3], reason = ARGV[4]})
end
local beat = redis.call('ZSCORE', NODES, node)
local silent = beat and now_ms() - tonumber(beat) or -1
return {'ok', c and c.name or '', node, silent}
