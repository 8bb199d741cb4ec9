-- room_topic.lua: a user sets (or clears) a room's topic.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid, room key, topic ('' clears). As RoomState.may_set_topic: a
-- member, and an operator when the room is +t. The topic event goes to the room's
-- stream. {'ok', room name}, {'none'}, {'refused', code, room name}, {'gone'}.
local node, mid, key = ARGV[2], ARGV[3], ARGV[4]
local conn = node .. '/' .. mid
local c = load_conn(conn)
if not c then return {'gone'} end
local r, m = visible_room(conn, key)
if not r then return {'none'} end
if not m then return {'refused', 'not_in_room', r.name} end
if has_flag(r, 't') and not m.o then return {'refused', 'not_room_operator', r.name} end
local topic = ARGV[5]
if topic == '' then topic = nil end
r.topic, r.topic_by, r.topic_time = topic, c.name, now_ms() / 1000
save_room(key, r)
emit(room_log(key), {t = 'topic', room = key, topic = topic, by = c.name,
                     time = r.topic_time})
return {'ok', r.name}
