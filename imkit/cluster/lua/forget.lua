-- forget.lua: messages deleted from the history.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, JSON list of msgid numbers (as strings). Deletes those messages from
-- P:hist (imkit history delete) and tells every node to drop them from its replay and
-- tell its users (a forget event in P:log); a msgid not in P:hist is looked for in the
-- histories of the rooms that exist, and its deletion told to the room's stream (an
-- amend event without 'by': an administrator). Returns {number, room name ('': the
-- lobby)} for each message that was there.
local deleted, found = {}, {}
local rooms = nil
for _, n in ipairs(cjson.decode(ARGV[2])) do
  local number = tonumber(n)
  local id = string.format('%.0f-%d', (number - number % 1000) / 1000, number % 1000)
  if redis.call('XDEL', P .. ':hist', id) == 1 then
    redis.call('HDEL', P .. ':hist:edits', id)
    table.insert(deleted, n)
    table.insert(found, {n, ''})
  else
    rooms = rooms or redis.call('HKEYS', ROOMS)
    for _, key in ipairs(rooms) do
      local f = redis.call('XRANGE', room_hist(key), id, id)
      if #f > 0 then
        local name = load_room(key).name
        redis.call('XDEL', room_hist(key), id)
        redis.call('HDEL', room_hist(key) .. ':edits', id)
        local msgid = msgid_text(n)
        emit(room_log(key), {t = 'amend', msgid = msgid, room = key, rname = name,
                             ms = now_ms()})
        table.insert(found, {n, name})
        break
      end
    end
  end
end
if #deleted > 0 then emit(LOG, {t = 'forget', ids = deleted}) end
return found
