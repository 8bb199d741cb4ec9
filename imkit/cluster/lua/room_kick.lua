-- room_kick.lua: a room's operator takes a member out of it (its account forgets it).
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid, room key, the target's name key, reason ('' none). The kick
-- event goes to the room's stream (every member is told, the target too; the target's
-- node takes it out of the room there). {'ok', room name}, {'none'}, {'refused', code,
-- room name}, {'no_user'}, {'not_member', target's name, room name}, {'gone'}.
local node, mid, key = ARGV[2], ARGV[3], ARGV[4]
local conn = node .. '/' .. mid
local c = load_conn(conn)
if not c then return {'gone'} end
local r, m = visible_room(conn, key)
if not r then return {'none'} end
if not m then return {'refused', 'not_in_room', r.name} end
if not m.o then return {'refused', 'not_room_operator', r.name} end
local target, t, refusal = room_target(key, r, ARGV[5])
if refusal then return refusal end
local reason = ARGV[6]
if reason == '' then reason = nil end
kick_member(key, target, t, reason, c.name)
return {'ok', r.name}
