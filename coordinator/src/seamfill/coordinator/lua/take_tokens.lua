-- take_tokens: a token bucket per upstream source, shared by every worker of the fleet.
-- (Not a dataset script: the _lib.lua prelude is not prepended.)
-- KEYS[1] bucket hash of the source
-- ARGV[1] rate, tokens per second   ARGV[2] burst   ARGV[3] tokens wanted
-- Returns {granted (1/0), retry after, ms}
-- Time is Redis's own (TIME): replicas with skewed clocks share one bucket correctly.
local rate, burst, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(b[1]) or burst, tonumber(b[2]) or now
if now > ts then tokens = math.min(burst, tokens + (now - ts) / 1e6 * rate) end
if now < ts then now = ts end
local ttl = math.ceil(burst / rate * 1000) + 1000
if tokens >= n then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - n), 'ts', string.format('%d', now))
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {1, 0}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], ttl)
return {0, math.ceil((n - tokens) / rate * 1000)}
