-- amend.lua: a user deletes or edits a message (docs/integrations.md, "Delete and edit").
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid, msgid number, 'd' (delete) or 'e' (edit), the new text (a
-- delete: its reason, '' none), where it must be ('': anywhere conn sees it; '-': the
-- lobby; else a room key, as IRC's REDACT names its channel). The message is looked
-- for in P:hist (the lobby's, seen by everyone), then in the histories of the rooms
-- conn is in (a room's is seen by its members only). Its author
-- (the account it was sent from: 'ac') may delete or edit it, a room's operator delete
-- it. A delete removes the entry (XDEL: its text is gone); an edit keeps the new text in
-- the stream's edits hash (STREAM:edits: entry id -> JSON {t, ms}), which every read of
-- history lays over the entry. An 'amend' event goes to P:log (the lobby's) or the
-- room's stream. {'ok', msgid}, {'refused', code, guest ('1': conn has no account)},
-- {'gone'}.
local node, mid = ARGV[2], ARGV[3]
local conn = node .. '/' .. mid
local c = load_conn(conn)
if not c then return {'gone'} end
local number = tonumber(ARGV[4])
local id = entry_id(number)
local msgid = msgid_text(ARGV[4])
local guest = c.account and '' or '1'
local only = ARGV[7]
local stream, key = P .. ':hist', nil
local found = {}
if only == '' or only == '-' then found = redis.call('XRANGE', stream, id, id) end
if #found == 0 then
  stream = nil
  if only ~= '-' and type(c.rooms) == 'table' then
    for _, k in ipairs(c.rooms) do
      local f = {}
      if only == '' or only == k then f = redis.call('XRANGE', room_hist(k), id, id) end
      if #f > 0 then
        stream, key, found = room_hist(k), k, f
        break
      end
    end
  end
end
if not stream then return {'refused', 'no_such_message', guest} end
local fields = {}
local raw = found[1][2]
for i = 1, #raw, 2 do fields[raw[i]] = raw[i + 1] end
if not (c.account and fields.ac == c.account) then
  local op = false
  if ARGV[5] == 'd' and key then
    local m = redis.call('HGET', room_members(key), conn)
    op = m and cjson.decode(m).o
  end
  if not op then return {'refused', 'not_allowed', guest} end
end
local ms = now_ms()
local edits = stream .. ':edits'
local event = {t = 'amend', msgid = msgid, by = c.name, addr = c.addr, ms = ms}
if ARGV[5] == 'd' then
  redis.call('XDEL', stream, id)
  redis.call('HDEL', edits, id)
  if ARGV[6] ~= '' then event.reason = ARGV[6] end
else
  redis.call('HSET', edits, id, cjson.encode({t = ARGV[6], ms = ms}))
  event.text = ARGV[6]
  -- Edits of entries retention trimmed away are dropped now and then.
  if redis.call('HLEN', edits) > 1000 then
    local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
    local low = first and tonumber(string.match(first[1], '^%d+')) or math.huge
    for _, e in ipairs(redis.call('HKEYS', edits)) do
      if tonumber(string.match(e, '^%d+')) < low then redis.call('HDEL', edits, e) end
    end
  end
end
if key then
  event.room = key
  event.rname = fields.r
  emit(room_log(key), event)
else
  emit(LOG, event)
end
return {'ok', msgid}
