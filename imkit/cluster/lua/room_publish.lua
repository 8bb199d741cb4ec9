-- room_publish.lua: a message to a room.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid, room key, text, history cutoff ms (0: keep all), '1' for an
-- IRC NOTICE (its event says notice). As RoomState.speaking: a non-member may not speak
-- in a +n room, nor a member without operator status or voice in a +m one. The message
-- is stored in P:room:KEY:hist (r: the room's name) and appended to the room's stream,
-- as publish.lua does for the lobby. {'ok', msgid, ms, room name}, {'none'} (no such
-- room, to this user), {'refused', code, room name}, {'gone'}.
local node, mid, key = ARGV[2], ARGV[3], ARGV[4]
local conn = node .. '/' .. mid
local c = load_conn(conn)
if not c then return {'gone'} end
local r, m = visible_room(conn, key)
if not r then return {'none'} end
if not m and has_flag(r, 'n') then return {'refused', 'not_in_room', r.name} end
if m and has_flag(r, 'm') and not (m.o or m.v) then return {'refused', 'muted', r.name} end
local ms = now_ms()
local number, msgid = new_msgid(ms)
local fields = {'n', c.name, 'a', c.addr, 't', ARGV[5], 'ms', ms, 'r', r.name}
if c.account then
  table.insert(fields, 'ac')
  table.insert(fields, c.account)
end
add_message(room_hist(key), entry_id(number), tonumber(ARGV[6]), fields)
emit(room_log(key), {t = 'm', room = key, name = c.name, addr = c.addr, text = ARGV[5],
                     ms = ms, msgid = msgid, node = node, mid = mid, account = c.account,
                     notice = ARGV[7] == '1' or nil})
return {'ok', msgid, ms, r.name}
