-- worker_seen: register or refresh a worker's record; tell it whether it is draining.
-- (Not a dataset script: the _lib.lua prelude is not prepended.)
-- KEYS[1] workers index (ZSET by last seen)   KEYS[2] the worker's hash
-- ARGV[1] worker id   ARGV[2] sources, comma-separated
-- ARGV[3] "1" to record ARGV[2] as the worker's sources (Acquire), "0" to keep them (Heartbeat)
-- Returns 1 when the worker was asked to drain, else 0
-- Only Acquire creates a record: a heartbeat from an id that never acquired creates nothing.
-- Kept to a few commands: replicas call it at most once per worker per refresh interval, and an
-- idle fleet's cost in Redis is mostly this.
if ARGV[3] ~= '1' and redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local t = redis.call('TIME')
local now = string.format('%d', tonumber(t[1]) * 1000000 + tonumber(t[2]))
redis.call('ZADD', KEYS[1], now, ARGV[1])
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[2], 'last_seen', now, 'sources', ARGV[2])
else
  redis.call('HSET', KEYS[2], 'last_seen', now)
end
if redis.call('HGET', KEYS[2], 'draining') == '1' then return 1 end
return 0
