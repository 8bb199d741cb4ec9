-- publish.lua: a public message.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid, text, history cutoff ms (0: keep all), '1' for an IRC NOTICE
-- (its event says notice, so that IRC users see one on every node).
-- {'ok', msgid, how far the slowest reader is behind, ms}, {'gone'}.
-- A public message: stored in P:hist (the history) and appended to P:log. Both carry the
-- sender's account (``ac`` in P:hist) when it is logged in.
local c = load_conn(ARGV[2] .. '/' .. ARGV[3])
if not c then return {'gone'} end
local ms = now_ms()
local number, msgid = new_msgid(ms)
local fields = {'n', c.name, 'a', c.addr, 't', ARGV[4], 'ms', ms}
if c.account then
  table.insert(fields, 'ac')
  table.insert(fields, c.account)
end
add_message(P .. ':hist', entry_id(number), tonumber(ARGV[5]), fields)
local id = emit(LOG, {t = 'm', name = c.name, addr = c.addr, text = ARGV[4], ms = ms,
                      msgid = msgid, node = ARGV[2], mid = ARGV[3], account = c.account,
                      notice = ARGV[6] == '1' or nil})
-- How far the slowest live reader is behind (read_mark.lua keeps its place in P:meta low).
local low = redis.call('HGET', META, 'low')
local behind = 0
if low then behind = math.max(0, tonumber(string.match(id, '%d+$')) - tonumber(low)) end
return {'ok', msgid, behind, ms}
