-- ensure: plan one bounded batch of a job's chunks; a chunk already planned is shared, never
-- duplicated. The cells come from the job's range and the coverage here, in the script, so a
-- request costs a few bytes to send whatever its size; the caller runs it again from the cursor
-- it returns until the job is planned (the job is marked 'planning' until then and cannot end).
-- KEYS[1..7] as in _lib.lua; KEYS[8] coverage of the series; KEYS[9] jobs index
-- ARGV[1..5] as in _lib.lua
-- ARGV[6] job local id   ARGV[7] symbol   ARGV[8] job start   ARGV[9] job end
-- ARGV[10] priority class (1..3)   ARGV[11] requested_by   ARGV[12] traceparent
-- ARGV[13] chunk span, us   ARGV[14] bar interval, us   ARGV[15] settle margin, us
-- ARGV[16] cursor: "" for the first batch (creates the job), else the cell to go on from; a
--   cursor that is not the job's own (another replica planned that batch) plans nothing and
--   answers the job's cursor, so two replicas resuming one job never plan a cell twice
-- ARGV[17] cells per batch   ARGV[18] priority aging, us per class   ARGV[19] us per chunk index
-- ARGV[20] idempotency key ("" = none)   ARGV[21] how long a key is remembered, seconds
-- Returns {next cursor (-1 when the job is planned), chunks total, newly queued, shared, job id}
-- where the job id is another job's when the idempotency key was seen before (nothing planned)
--
-- Scheduling: a chunk's score (lower is granted first) is the time it was planned, plus
-- ARGV[18] per priority class below the first, plus ARGV[19] per chunk before it in its job.
-- So jobs share the fleet fairly, a class outranks the next only by a bounded wait, and a
-- chunk planned at t is never overtaken by one planned after t + (class - 1) * ARGV[18]
-- + index * ARGV[19]: low priority does not starve.
local K_COV, K_JOBS = KEYS[8], KEYS[9]
local j, sym, js, je = ARGV[6], ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local prio, span, step, settle = tonumber(ARGV[10]), tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
local cursor, batch, age, per = ARGV[16], tonumber(ARGV[17]), tonumber(ARGV[18]), tonumber(ARGV[19])
local jk, jp = jkey(j), jpkey(j)
local edge = NOW - NOW % step - settle
edge = edge - edge % step
local pe = math.min(je, edge)
local cell
if cursor == '' then
  if ARGV[20] ~= '' then
    local ik = B .. 'idem:' .. ARGV[20]
    local prev = redis.call('GET', ik)
    if prev and redis.call('EXISTS', jkey(prev)) == 1 then return {-1, 0, 0, 0, prev} end
    redis.call('SET', ik, j, 'EX', tonumber(ARGV[21]))
  end
  redis.call('HSET', jk, 'sym', sym, 's', ARGV[8], 'e', ARGV[9], 'prio', ARGV[10],
    'state', 'running', 'total', 0, 'done', 0, 'failed', 0, 'leased', 0, 'rows', 0,
    'created', I(NOW), 'updated', I(NOW), 'by', ARGV[11], 'tp', ARGV[12], 'err', '',
    'planning', 1)
  redis.call('ZADD', K_JOBS, I(NOW), j)
  cell = js - js % span
else
  local st, own = unpack(redis.call('HMGET', jk, 'state', 'cursor'))
  if st ~= 'running' and st ~= 'paused' then
    -- Cancelled (or expired) while being planned: plan no more of it.
    if st then redis.call('HDEL', jk, 'planning', 'cursor') end
    redis.call('ZREM', B .. 'planning', j)
    return {-1, tonumber(redis.call('HGET', jk, 'total') or '0'), 0, 0, j}
  end
  if own ~= cursor then return {own or -1, 0, 0, 0, j} end
  cell = tonumber(cursor)
end
local total = tonumber(redis.call('HGET', jk, 'total'))
local base_score = NOW + (prio - 1) * age
local fresh, shared = 0, 0

-- The gaps of [cs, ce) in the coverage, and the end of the covered run at cs (for skipping
-- whole covered cells at once).
local function gaps_of(cs, ce)
  local gaps, pos, offset = {}, cs, 0
  while pos < ce do
    local batch_ = redis.call('ZRANGEBYSCORE', K_COV, '(' .. I(pos), '+inf', 'LIMIT', offset, 64)
    for _, m in ipairs(batch_) do
      local a, b = parse(m)
      if a >= ce then break end
      if a > pos then gaps[#gaps + 1] = {pos, a} end
      if b > pos then pos = b end
      if pos >= ce then break end
    end
    if #batch_ < 64 or pos >= ce then break end
    offset = offset + 64
  end
  if pos < ce then gaps[#gaps + 1] = {pos, ce}; pos = ce end
  if #gaps == 0 then
    local m = redis.call('ZRANGEBYSCORE', K_COV, I(ce), '+inf', 'LIMIT', 0, 1)[1]
    if m then
      local a, b = parse(m)
      if a <= cs then pos = b end
    end
  end
  return gaps, pos
end

local function plan_chunk(c0, gaps)
  local lid = sym .. '@' .. I(c0)
  local ck = ckey(lid)
  local score = base_score + total * per
  local c = redis.call('HMGET', ck, 'state', 's', 'e', 'score', 'want')
  local st = c[1]
  if not st then
    redis.call('HSET', ck, 'sym', sym, 'cell', I(c0), 's', I(gaps[1][1]), 'e', I(gaps[1][2]),
      'want', want_str(gaps), 'state', 'queued', 'score', I(score), 'attempts', 0, 'tp', ARGV[12],
      'err', '')
    redis.call('ZADD', K_READY, I(score), lid)
    fresh = fresh + 1
  else
    shared = shared + 1
    local old = want_parse(c[5])
    if #old == 0 then old = {{tonumber(c[2]), tonumber(c[3])}} end
    local w = want_union(old, gaps)
    redis.call('HDEL', ck, 'cancelled')
    if st == 'leased' then
      -- A worker holds the old range: remember the whole want, Complete queues the rest.
      redis.call('HSET', ck, 'want', want_str(w))
      redis.call('HINCRBY', jk, 'leased', 1)
    else
      redis.call('HSET', ck, 'want', want_str(w), 's', I(w[1][1]), 'e', I(w[1][2]))
    end
    if score < tonumber(c[4]) then redis.call('HSET', ck, 'score', I(score)) end
    if st == 'dead' then
      -- A new request gives a dead chunk a fresh start.
      redis.call('ZREM', K_DEAD, lid)
      redis.call('HSET', ck, 'attempts', 0, 'state', 'queued')
      redis.call('ZADD', K_READY, redis.call('HGET', ck, 'score'), lid)
      fresh = fresh + 1
    elseif st == 'parked' then
      redis.call('SREM', K_PARKED, lid)
      redis.call('HSET', ck, 'state', 'queued')
      redis.call('ZADD', K_READY, redis.call('HGET', ck, 'score'), lid)
      fresh = fresh + 1
    elseif st == 'queued' then
      redis.call('ZADD', K_READY, redis.call('HGET', ck, 'score'), lid)
    end
  end
  redis.call('SADD', cjkey(lid), j)
  redis.call('SADD', jp, lid)
  total = total + 1
end

local n = 0
while cell < pe and n < batch do
  n = n + 1
  local gaps, pos = gaps_of(math.max(cell, js), math.min(cell + span, pe))
  if #gaps > 0 then plan_chunk(cell, gaps) end
  local nxt = cell + span
  if pos > nxt then nxt = math.max(nxt, pos - pos % span) end
  cell = nxt
end
redis.call('HSET', jk, 'total', total)
if fresh > 0 then wake() end
if cell < pe then
  redis.call('HSET', jk, 'cursor', I(cell))
  -- Jobs being planned, by the time of their last batch: a replica that dies mid-planning
  -- leaves its job here, and any replica's reaper plans the rest.
  redis.call('ZADD', B .. 'planning', I(NOW), j)
  return {I(cell), total, fresh, shared, j}
end
redis.call('HDEL', jk, 'planning', 'cursor')
redis.call('ZREM', B .. 'planning', j)
if total == 0 then
  redis.call('HSET', jk, 'state', 'done')
  redis.call('EXPIRE', jk, JOB_TTL)
  publish_job(j)
elseif job_finish_check(j) then
  publish_job(j)
end
return {-1, total, fresh, shared, j}
