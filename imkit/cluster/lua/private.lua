-- private.lua: a private message.
-- Runs after prelude.lua as the body of a function of ARGV (imkit.cluster.scripts),
-- alone or in a BATCH. KEYS: none; ARGV[1] is the key prefix (docs/cluster.md, "Keys").
--
-- ARGV: prefix, node, mid, recipient's name key, text, node timeout ms, conversation
-- (the conversation_key of the sender's account and the recipient's name, computed in
-- Python; '' when the sender is not logged in), the sender's account key, mail cutoff
-- (msgid number: older waiting messages are dropped), history cutoff ms (0: keep all),
-- the most messages a mailbox holds, '1' for an IRC NOTICE (its event says notice, so that
-- an IRC recipient on any node sees a NOTICE; one kept for an offline account is a message).
-- A private message. To a user online on a live node: appended to that node's log,
-- {'ok', msgid}. Else, to an account: kept in its mailbox until it logs in,
-- {'queued', msgid, account name}, or {'full', account name}. Else {'none'}. Between
-- two accounts it is also kept in their conversation, P:conv:PAIR (and each account's
-- index of its conversations, P:convs:KEY: other key -> PAIR, to delete them with it).
local c = load_conn(ARGV[2] .. '/' .. ARGV[3])
if not c then return {'gone'} end
local key, text = ARGV[4], ARGV[5]
local target = redis.call('HGET', NAMES, key)
local t = target and load_conn(target)
local ms = now_ms()
local tnode, tmid, beat
if t then
  tnode, tmid = conn_node(target)
  beat = redis.call('ZSCORE', NODES, tnode)
end
local pair, akey = ARGV[7], ARGV[8]
local function converse(number, to)
  add_message(P .. ':conv:' .. pair, entry_id(number), tonumber(ARGV[10]),
              {'n', c.name, 'a', c.addr, 'to', to, 't', text, 'ms', ms, 'ac', c.account})
  redis.call('HSET', P .. ':convs:' .. akey, key, pair)
  redis.call('HSET', P .. ':convs:' .. key, akey, pair)
end
if not t or not beat or ms - tonumber(beat) > tonumber(ARGV[6]) then
  local raw = redis.call('HGET', ACCOUNTS, key)
  if not raw then return {'none'} end
  local to = cjson.decode(raw).name
  local box = mailbox(key)
  if trim_mail(box, tonumber(ARGV[9])) >= tonumber(ARGV[11]) then return {'full', to} end
  local number, msgid = new_msgid(ms)
  -- ak: the sender's account key, to find the message when that account is removed.
  redis.call('RPUSH', box, cjson.encode({name = c.name, addr = c.addr, account = c.account,
                                         ak = c.account and akey or nil,
                                         to = to, text = text, ms = ms, msgid = msgid}))
  if c.account and pair ~= '' then converse(number, to) end
  return {'queued', msgid, to}
end
local number, msgid = new_msgid(ms)
emit(node_log(tnode), {t = 'p', name = c.name, addr = c.addr, to = t.name, mid = tmid,
                       text = text, ms = ms, msgid = msgid, account = c.account,
                       notice = ARGV[12] == '1' or nil})
if c.account and t.account and pair ~= '' then converse(number, t.name) end
return {'ok', msgid}
