-- complete: the chunk's rows are written and visible; cover its range and settle its jobs.
-- KEYS[1..7] as in _lib.lua; KEYS[8] coverage of the chunk's series; KEYS[9] rows per minute
-- ARGV[1..5] as in _lib.lua
-- ARGV[6] local id   ARGV[7] token   ARGV[8] rows (0 = the source has none: covered-empty)
-- ARGV[9] worker id   ARGV[10] bar interval, us   ARGV[11] settle margin, us
-- ARGV[12] "1" when rows are bars (at most one per bar of the chunk)   ARGV[13] rows bound
-- Returns {job ids finished by this completion}. A stale token (LeaseLost), another worker's
-- lease (PermissionDenied) or rows out of bounds (InvalidArgument) change nothing.
-- The chunk's range is covered up to the settled edge (nothing at or after it is covered); the
-- part of its want outside the range it was leased with (jobs that asked for more of the cell
-- while it was leased) is queued again, and only the jobs that wanted none of it are settled.
local K_COV, K_ROWS = KEYS[8], KEYS[9]
local lid, token, worker = ARGV[6], ARGV[7], ARGV[9]
local rows, step, settle = tonumber(ARGV[8]), tonumber(ARGV[10]), tonumber(ARGV[11])
local err = check_lease(lid, token, worker)
if err then return err end
local ck = ckey(lid)
local c = redis.call('HMGET', ck, 's', 'e', 'want')
local s, e = tonumber(c[1]), tonumber(c[2])
local bound = tonumber(ARGV[13])
if ARGV[12] == '1' then bound = math.min(bound, math.ceil((e - s) / step)) end
if not rows or rows ~= math.floor(rows) or rows < 0 or rows > bound then
  return fail('InvalidArgument', 'rows = ' .. string.sub(ARGV[8], 1, 24) .. ' is out of bounds for lease '
    .. DS .. '/' .. lid .. ': give the rows written, 0..' .. I(bound))
end
local forming = NOW - NOW % step
local settled = forming - settle
settled = settled - settled % step
local want = want_parse(c[3])
if #want == 0 then want = {{s, e}} end
local rest = want_minus(want, s, e)
-- Validated and computed: the writes start here.
cov_add(K_COV, s, math.min(e, settled))
unlease(lid)
redis.call('HINCRBY', K_STATS, 'chunks_done', 1)
redis.call('HINCRBY', K_STATS, 'rows_done', rows)
local minute = I(math.floor(NOW / 60000000))
redis.call('HINCRBY', K_ROWS, minute, rows)
redis.call('EXPIRE', K_ROWS, 300)
if #rest > 0 then
  -- Jobs that asked for nothing of the rest are served now; the others wait for it.
  local finished = {}
  for _, j in ipairs(redis.call('SMEMBERS', cjkey(lid))) do
    local jr = redis.call('HMGET', jkey(j), 's', 'e')
    if not jr[1] or not want_meets(rest, tonumber(jr[1]), tonumber(jr[2])) then
      if job_settle(lid, j, 'done', rows, '') then finished[#finished + 1] = j end
      redis.call('SREM', cjkey(lid), j)
    end
  end
  if redis.call('SCARD', cjkey(lid)) > 0 then
    redis.call('HSET', ck, 's', I(rest[1][1]), 'e', I(rest[1][2]), 'want', want_str(rest),
      'attempts', 0)
    requeue(lid)
  else
    drop_chunk(lid)
  end
  return finished
end
local finished = chunk_settle(lid, 'done', rows, '')
drop_chunk(lid)
return finished
