-- worker_seen: register or refresh a worker's record; tell it whether it is draining.
-- (Not a dataset script: the _lib.lua prelude is not prepended.)
-- KEYS[1] workers index (ZSET by last seen)   KEYS[2] the worker's hash
-- ARGV[1] now, us   ARGV[2] worker id   ARGV[3] sources, comma-separated
-- ARGV[4] "1" to record ARGV[3] as the worker's sources (Acquire), "0" to keep them (Heartbeat)
-- Returns 1 when the worker was asked to drain, else 0
-- Kept to three commands: replicas call it at most once per worker per refresh interval, and an
-- idle fleet's cost in Redis is mostly this.
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[2], 'last_seen', ARGV[1], 'sources', ARGV[3])
else
  redis.call('HSET', KEYS[2], 'last_seen', ARGV[1])
end
if redis.call('HGET', KEYS[2], 'draining') == '1' then return 1 end
return 0
