-- rename.lua: a user changes its name.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid, new name, its key. {'taken'}, {'same'} or {'ok'}; refused
-- {'logged_in', account} for a user logged in (it keeps its account's name) and
-- {'reserved', account name} for a name that is an account's but not the user's.
local conn = ARGV[2] .. '/' .. ARGV[3]
local c = load_conn(conn)
if not c then return {'gone'} end
local new, key = ARGV[4], ARGV[5]
if c.account and c.name ~= new then return {'logged_in', c.account} end
local account = redis.call('HGET', ACCOUNTS, key)
if account and not (c.account and c.key == key) then
  return {'reserved', cjson.decode(account).name}
end
local holder = redis.call('HGET', NAMES, key)
if holder and holder ~= conn then return {'taken'} end
if c.name == new then return {'same'} end
rename_conn(conn, c, new, key, nil)
return {'ok'}
