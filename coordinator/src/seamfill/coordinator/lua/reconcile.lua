-- reconcile: replace the coverage of [start, end) of one series by what storage really holds.
-- KEYS[1..7] as in _lib.lua; KEYS[8] coverage of the series
-- ARGV[1..5] as in _lib.lua
-- ARGV[6] start   ARGV[7] end   ARGV[8..] pairs (start, end) of ranges storage holds
-- Returns the number of intervals written
local K_COV = KEYS[8]
cov_remove(K_COV, tonumber(ARGV[6]), tonumber(ARGV[7]))
local n = 0
for i = 8, #ARGV, 2 do
  cov_add(K_COV, tonumber(ARGV[i]), tonumber(ARGV[i + 1]))
  n = n + 1
end
return n
