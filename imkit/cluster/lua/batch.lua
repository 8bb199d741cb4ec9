-- batch.lua: runs several operations in order, atomically, and returns their replies.
-- imkit.cluster.scripts builds the script as prelude.lua, then OPERATIONS[name] =
-- function(ARGV) <name.lua> end for every operation, then this.
-- KEYS: none. ARGV: prefix, JSON list of operation names, JSON list of their ARGV lists
-- (each with the prefix first).
-- The node's writer sends the operations queued together as one BATCH: one script call
-- instead of many, and a reader blocked in XREAD gets all their events at once (Redis
-- serves blocked readers after each command, so separate calls would wake it for each).
local names, arguments = cjson.decode(ARGV[2]), cjson.decode(ARGV[3])
local replies = {}
for i, name in ipairs(names) do replies[i] = OPERATIONS[name](arguments[i]) end
return replies
