-- room_invite.lua: a member invites a user to a room (an operator, if it is +i).
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid, room key, the invited user's name key. Its name key joins the
-- room's invited; it is told on its node's stream (inv). {'ok', room name, its name},
-- {'none'}, {'refused', code, room name}, {'no_user'}, {'gone'}.
local node, mid, key = ARGV[2], ARGV[3], ARGV[4]
local conn = node .. '/' .. mid
local c = load_conn(conn)
if not c then return {'gone'} end
local r, m = visible_room(conn, key)
if not r then return {'none'} end
if not m then return {'refused', 'not_in_room', r.name} end
if has_flag(r, 'i') and not m.o then return {'refused', 'not_room_operator', r.name} end
local target = redis.call('HGET', NAMES, ARGV[5])
local t = target and load_conn(target)
if not t then return {'no_user'} end
invite(r, t.key)
save_room(key, r)
local tnode, tmid = conn_node(target)
emit(node_log(tnode), {t = 'inv', mid = tmid, rname = r.name, by = c.name})
return {'ok', r.name, t.name}
