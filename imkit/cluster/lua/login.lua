-- login.lua: a user logs in to an account.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid, account key, account name, login token, mail cutoff (msgid
-- number), character keys (JSON: imkit.cluster.terms.ascii_keys), and '' for a user online
-- or, for one that is not (--accounts-only, an IRC client's SASL), JSON {addr, mode, since,
-- real, about (claim's, in prelude.lua)} to join with.
-- The user proved it knows the account's password: another session of the account is
-- ended (bye 'replaced'), a guest holding the name (an account added meanwhile) gets its
-- default name, and the user takes the account's name (rn), or comes online with it
-- (on); one online whose account changed is told to every node (ac, P:log). Then its node is told (li, with the token: the node answers the login) and every
-- waiting message within the cutoff is copied to its node's stream, oldest first, as a
-- private message marked kept; they stay in the mailbox until the node has written them
-- to the client (mail_done.lua), so that a client dropped before gets them at its next
-- login. Expired ones are dropped; the login time is kept.
-- {'ok', kept}, or {'none'}: the account was removed meanwhile.
local node, mid, key, name = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local conn = node .. '/' .. mid
local c = load_conn(conn)
if ARGV[9] ~= '' then
  if not redis.call('ZSCORE', NODES, node) then return {'reaped'} end
elseif not c then
  return {'gone'}
end
local raw = redis.call('HGET', ACCOUNTS, key)
if not raw then return {'none'} end
local holder = redis.call('HGET', NAMES, key)
if holder and holder ~= conn then
  local h = load_conn(holder)
  if h and h.account then
    log_out(holder, 'replaced')
  elseif h then
    evict_guest(holder, h, cjson.decode(ARGV[8]))
  else
    redis.call('HDEL', NAMES, key)
  end
end
if c then
  local before = c.account
  c.account = name
  if c.name ~= name then
    rename_conn(conn, c, name, key, nil)
  else
    redis.call('HSET', CONNS, conn, cjson.encode(c))
  end
  if before ~= name then
    -- Its account changed while online: every node tells the IRC users who share the
    -- lobby or one of its rooms (account-notify), under its new name.
    local lobby = nil
    if c.lobby == false then lobby = false end
    emit(LOG, {t = 'ac', name = name, addr = c.addr, account = name, rooms = c.rooms,
               lobby = lobby})
  end
else
  local j = cjson.decode(ARGV[9])
  claim(conn, {name, key}, j.addr, j.mode, j.since, mid, node, 0, j.real, name, j.about)
end
emit(node_log(node), {t = 'li', mid = mid, account = name, token = ARGV[6]})
local box = mailbox(key)
local kept = trim_mail(box, tonumber(ARGV[7]))
for _, entry in ipairs(redis.call('LRANGE', box, 0, -1)) do
  local m = cjson.decode(entry)
  m.t, m.mid, m.kept = 'p', mid, 1
  emit(node_log(node), m)
end
local account = cjson.decode(raw)
account.last_login = now_ms() / 1000
redis.call('HSET', ACCOUNTS, key, cjson.encode(account))
return {'ok', kept}
