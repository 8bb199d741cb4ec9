-- hook_publish.lua: a webhook's message to its room (docs/integrations.md).
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, room key, the hook's name, the name the payload asked for ('' none)
-- and its name key, text, history cutoff ms (0: keep all), the address shown. The
-- asked-for name is used only when no one holds it (P:names) and no account has it;
-- else the hook's own. A hook is no member: +n and +m do not apply. Stored in
-- P:room:KEY:hist (b: 1, a bot) and appended to the room's stream with bot = true, as
-- room_publish.lua does for a user. {'ok', msgid, sender} or {'none'} (no such room).
local key, name, asked, asked_key = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local r = load_room(key)
if not r then return {'none'} end
local sender = name
if asked ~= '' and redis.call('HEXISTS', NAMES, asked_key) == 0
    and redis.call('HEXISTS', ACCOUNTS, asked_key) == 0 then
  sender = asked
end
local ms = now_ms()
local number, msgid = new_msgid(ms)
local fields = {'n', sender, 'a', ARGV[8], 't', ARGV[6], 'ms', ms, 'r', r.name, 'b', '1'}
add_message(room_hist(key), entry_id(number), tonumber(ARGV[7]), fields)
emit(room_log(key), {t = 'm', room = key, name = sender, addr = ARGV[8], text = ARGV[6],
                     ms = ms, msgid = msgid, bot = true})
return {'ok', msgid, sender}
