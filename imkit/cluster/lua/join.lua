-- join.lua: a new connection takes its default name.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid, addr (as shown), mode, since, real address ('' unless
-- hidden), how to number more names ('' or JSON: imkit.cluster.terms.numbered_names),
-- what the user says of itself ('' or JSON: claim's about, in prelude.lua), then
-- candidate name, key pairs. A new connection's default name (ADDR, ADDR#2 ...: the
-- first free one), announced. With --hide-addresses every connection from one IP shares
-- ADDR (a pseudonym): past the candidates it goes on with ADDR#N, N = 17, 18 ...
local node, mid = ARGV[2], ARGV[3]
if not redis.call('ZSCORE', NODES, node) then return {'reaped'} end
local conn = node .. '/' .. mid
local candidates = {}
local about = nil
if ARGV[9] ~= '' then about = cjson.decode(ARGV[9]) end
for i = 10, #ARGV do table.insert(candidates, ARGV[i]) end
local name = claim(conn, candidates, ARGV[4], ARGV[5], ARGV[6], mid, node, 0, ARGV[7], nil, about)
if not name and ARGV[8] ~= '' then
  local more = cjson.decode(ARGV[8])
  for n = #candidates / 2 + 1, 1000000 do
    local digits, key = tostring(n), more.key
    for i = 1, #digits do key = key .. more.digits[string.byte(digits, i) - 47] end
    local numbered = {more.name .. '#' .. digits, key}
    name = claim(conn, numbered, ARGV[4], ARGV[5], ARGV[6], mid, node, 0, ARGV[7], nil, about)
    if name then break end
  end
end
if not name then return {'full'} end
return {'ok', name}
