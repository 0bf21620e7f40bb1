-- complete: the chunk's rows are written and visible; cover its range and settle its jobs.
-- KEYS[1..7] as in _lib.lua; KEYS[8] coverage of the chunk's series; KEYS[9] rows per minute
-- ARGV[1..5] as in _lib.lua
-- ARGV[6] local id   ARGV[7] token   ARGV[8] rows (0 = the source has none: covered-empty)
-- ARGV[9] settled edge of the series: nothing at or after it is covered
-- ARGV[10] "1" when the dataset has a concurrency cap (a freed slot wakes waiting workers)
-- Returns {job ids finished by this completion}; a stale token raises LeaseLost and changes nothing
local K_COV, K_ROWS = KEYS[8], KEYS[9]
local lid, token, rows, settled = ARGV[6], ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local err = check_lease(lid, token)
if err then return err end
local ck = ckey(lid)
local c = redis.call('HMGET', ck, 's', 'e', 'ws', 'we')
local s, e = tonumber(c[1]), math.min(tonumber(c[2]), settled)
cov_add(K_COV, s, e)
unlease(lid)
redis.call('HINCRBY', K_STATS, 'chunks_done', 1)
redis.call('HINCRBY', K_STATS, 'rows_done', rows)
local minute = I(math.floor(NOW / 60000000))
redis.call('HINCRBY', K_ROWS, minute, rows)
redis.call('EXPIRE', K_ROWS, 300)
if c[3] then
  -- A job asked for more of this cell while it was leased: queue the rest instead of finishing.
  local ws, we = tonumber(c[3]), tonumber(c[4])
  local rs, re = ws, we
  if ws >= s then rs = e end
  if we <= e then re = s end
  redis.call('HDEL', ck, 'ws', 'we')
  if rs < re then
    -- Jobs that asked for nothing of the rest are served now; the others wait for it.
    local finished = {}
    for _, j in ipairs(redis.call('SMEMBERS', cjkey(lid))) do
      local jr = redis.call('HMGET', jkey(j), 's', 'e')
      if not jr[1] or tonumber(jr[2]) <= rs or tonumber(jr[1]) >= re then
        if job_settle(lid, j, 'done', rows, '') then finished[#finished + 1] = j end
        redis.call('SREM', cjkey(lid), j)
      end
    end
    redis.call('HSET', ck, 's', I(rs), 'e', I(re), 'attempts', 0)
    if requeue(lid) == 'queued' then redis.call('PUBLISH', WAKECH, DS) end
    return finished
  end
end
local finished = chunk_settle(lid, 'done', rows, '')
drop_chunk(lid)
return finished
