-- reap: expired leases back to the queue, due retries back to the queue. Safe on any number of
-- replicas at once: each expired lease is moved by exactly one script run.
-- KEYS[1..7] as in _lib.lua
-- ARGV[1..5] as in _lib.lua
-- ARGV[6] max attempts   ARGV[7] batch limit
-- Returns {expired, dead-lettered, promoted, us until the next lease deadline or retry time
-- (-1 when nothing is pending)}
local max_attempts, limit = tonumber(ARGV[6]), tonumber(ARGV[7])
local expired, dead, woke1 = reclaim(max_attempts, limit)
local promoted, woke2 = promote(limit)
if woke1 or woke2 then wake() end
local next_due = -1
local l = redis.call('ZRANGE', K_LEASES, 0, 0, 'WITHSCORES')
local d = redis.call('ZRANGE', K_DELAYED, 0, 0, 'WITHSCORES')
if l[2] then next_due = tonumber(l[2]) end
if d[2] and (next_due < 0 or tonumber(d[2]) < next_due) then next_due = tonumber(d[2]) end
if next_due >= 0 then next_due = math.max(0, next_due - NOW) end
return {expired, dead, promoted, I(next_due)}
