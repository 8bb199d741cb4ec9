-- describe.lua: what an IRC client says of itself changed (its registration, AWAY,
-- SETNAME, its user modes), kept in its connection's record for WHO and WHOIS on every
-- node (people.lua).
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid, JSON {ident, realname, away, modes} (imkit.cluster.people.about:
-- each a string; away '' when back). No event: nobody is told (away-notify and setname
-- go through the rooms' and the lobby's own events). {'ok'}, or {'gone'}.
local conn = ARGV[2] .. '/' .. ARGV[3]
local c = load_conn(conn)
if not c then return {'gone'} end
local about = cjson.decode(ARGV[4])
for _, field in ipairs({'ident', 'realname', 'away', 'modes'}) do
  local value = about[field]
  if type(value) == 'string' then
    if value == '' then c[field] = nil else c[field] = value end
  end
end
redis.call('HSET', CONNS, conn, cjson.encode(c))
return {'ok'}
