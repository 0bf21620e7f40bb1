-- worker_seen: register or refresh a worker's record; tell it whether it is draining.
-- (Not a dataset script: the _lib.lua prelude is not prepended.)
-- KEYS[1] workers index (ZSET by last seen)   KEYS[2] the worker's hash
-- ARGV[1] now, us   ARGV[2] worker id   ARGV[3] sources, comma-separated   ARGV[4] rows to add
-- Returns 1 when the worker was asked to drain, else 0
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], 'last_seen', ARGV[1], 'sources', ARGV[3])
if tonumber(ARGV[4]) > 0 then redis.call('HINCRBY', KEYS[2], 'rows', ARGV[4]) end
redis.call('EXPIRE', KEYS[2], 86400)
if redis.call('HGET', KEYS[2], 'draining') == '1' then return 1 end
return 0
