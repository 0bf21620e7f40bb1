-- heartbeat: extend live leases, record progress, and say whether to go on.
-- KEYS[1..7] as in _lib.lua
-- ARGV[1..5] as in _lib.lua
-- ARGV[6] ttl, microseconds   ARGV[7] worker id
-- ARGV[8..] quadruples (local id, token, progress until, progress rows)
-- Returns one {directive, deadline, reason} per lease, in order; directive 1 = continue,
-- 2 = stop (cancelled), 3 = stop (paused), 4 = lost (stale token, expired, or another
-- worker's lease; nothing changed)
local ttl, worker = tonumber(ARGV[6]), ARGV[7]
local out = {}
for i = 8, #ARGV, 4 do
  local lid, token = ARGV[i], ARGV[i + 1]
  local err = check_lease(lid, token, worker)
  if err then
    out[#out + 1] = {4, 0, (string.gsub(err['err'], '^SEAMFILL %S+ ', ''))}
  else
    local deadline = NOW + ttl
    redis.call('HSET', ckey(lid), 'deadline', I(deadline), 'pu', ARGV[i + 2], 'pr', ARGV[i + 3])
    redis.call('ZADD', K_LEASES, I(deadline), lid)
    local mode = jobs_mode(lid)
    if mode == 'running' then
      out[#out + 1] = {1, I(deadline), ''}
    elseif mode == 'paused' then
      out[#out + 1] = {3, I(deadline), 'every job waiting on the chunk is paused: release it'}
    else
      out[#out + 1] = {2, I(deadline), 'every job waiting on the chunk was cancelled'}
    end
  end
end
return out
