-- release: the worker gives a chunk back at once (shutting down, or told to stop); no penalty.
-- KEYS[1..7] as in _lib.lua
-- ARGV[1..5] as in _lib.lua
-- ARGV[6] local id   ARGV[7] token   ARGV[8] worker id
-- Returns where the chunk went: "queued", "parked" or "dropped"
local lid, token = ARGV[6], ARGV[7]
local err = check_lease(lid, token, ARGV[8])
if err then return err end
unlease(lid)
redis.call('HINCRBY', ckey(lid), 'attempts', -1)
return requeue(lid)
