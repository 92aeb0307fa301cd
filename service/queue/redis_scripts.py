"""Lua scripts of the Redis backend. Each runs atomically on the server.

Job-modifying scripts take the job's five keys first, in this order:
KEYS[1] job hash, KEYS[2] item results hash, KEYS[3] url list, KEYS[4] started set,
KEYS[5] last-error hash. ``touch_job`` refreshes their TTL together so a job's state
expires as one unit, ``result_ttl`` after its last change.
"""

from __future__ import annotations

_JOB_HELPERS = """
local function touch_job(ttl)
  for i = 1, 5 do redis.call('PEXPIRE', KEYS[i], ttl) end
end

-- Called after any final write: when every item is final, settle the job's status once
-- and queue its callback. Returns true when this call finished the job.
local function complete(now, stats_key, callbacks_key, maxlen)
  local j = redis.call('HMGET', KEYS[1], 'total', 'done', 'failed', 'cancelled', 'status',
                       'finished_at', 'callback_url', 'id')
  if j[6] then return false end
  local done, failed, cancelled = tonumber(j[2]), tonumber(j[3]), tonumber(j[4])
  if done + failed + cancelled < tonumber(j[1]) then return false end
  local status = j[5]
  if status ~= 'cancelled' then
    if done > 0 then status = 'done' else status = 'failed' end
    redis.call('HINCRBY', stats_key, 'jobs_' .. status, 1)
  end
  redis.call('HSET', KEYS[1], 'status', status, 'finished_at', now)
  if j[7] and j[7] ~= '' then
    redis.call('HSET', KEYS[1], 'callback_status', 'pending')
    redis.call('XADD', callbacks_key, 'MAXLEN', '~', maxlen, '*', 'job', j[8])
  end
  return true
end
"""

# Unfinished items of a lane = consumer-group lag + pending. Creates the group when missing
# (a fresh or wiped Redis) so that submit never depends on a worker having started first.
_BACKLOG = """
local function backlog(key, group)
  if redis.call('EXISTS', key) == 0 then
    redis.call('XGROUP', 'CREATE', key, group, '0', 'MKSTREAM')
    return 0
  end
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local name, pending, lag
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1]
      elseif g[i] == 'pending' then pending = g[i + 1]
      elseif g[i] == 'lag' then lag = g[i + 1] end
    end
    if name == group then
      -- lag is nil when Redis cannot compute it: count every entry (a safe upper bound)
      if not lag then lag = redis.call('XLEN', key) end
      return pending + lag
    end
  end
  redis.call('XGROUP', 'CREATE', key, group, '0')
  return redis.call('XLEN', key)
end
"""

# KEYS: 1-5 job keys, 6 lane stream, 7 idempotency key (scoped to the owner), 8 stats,
#       9 high stream, 10 batch stream, 11 the owner's set of job ids
# ARGV: 1 job id, 2 group, 3 body hash, 4 ttl ms, 5 max queue, 6 maxlen, 7 use idempotency,
#       8 n job-hash args, 9 owner quota, 10 job-hash key prefix, 11 JSON list of extra
#       entry field/value pairs (trace context), 12.. job hash field/value pairs, then the urls
# Returns {1, id} created | {0, id} replay | {-1, id} key reused with another body |
#         {-2, backlog} queue full | {-3, owned} owner quota reached
# The owner's unfinished items are summed over its job set (finished or expired jobs are
# dropped from it on the way), so the count heals itself whatever happened to a job.
SUBMIT = (
    _JOB_HELPERS
    + _BACKLOG
    + """
local job_id, group, body_hash = ARGV[1], ARGV[2], ARGV[3]
local ttl, max_queue, maxlen = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local nf = tonumber(ARGV[8])
if ARGV[7] == '1' then
  local prev = redis.call('GET', KEYS[7])
  if prev then
    local sep = string.find(prev, ' ', 1, true)
    local prev_job = string.sub(prev, 1, sep - 1)
    if string.sub(prev, sep + 1) == body_hash then return {0, prev_job} end
    return {-1, prev_job}
  end
end
local first_url = 12 + nf
local extra = cjson.decode(ARGV[11])
local n = #ARGV - first_url + 1
local queued = backlog(KEYS[9], group) + backlog(KEYS[10], group)
if queued + n > max_queue then return {-2, tostring(queued)} end
local owned = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[11])) do
  local j = redis.call('HMGET', ARGV[10] .. id, 'total', 'done', 'failed', 'cancelled')
  local left = 0
  if j[1] then
    left = tonumber(j[1]) - tonumber(j[2] or 0) - tonumber(j[3] or 0) - tonumber(j[4] or 0)
  end
  if left > 0 then owned = owned + left else redis.call('SREM', KEYS[11], id) end
end
if owned + n > tonumber(ARGV[9]) then return {-3, tostring(owned)} end
redis.call('HSET', KEYS[1], unpack(ARGV, 12, 11 + nf))
for i = first_url, #ARGV do
  redis.call('RPUSH', KEYS[3], ARGV[i])
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', maxlen, '*',
             'job', job_id, 'item', tostring(i - first_url), 'url', ARGV[i], unpack(extra))
end
touch_job(ttl)
redis.call('SADD', KEYS[11], job_id)
redis.call('PEXPIRE', KEYS[11], ttl)
if ARGV[7] == '1' then redis.call('SET', KEYS[7], job_id .. ' ' .. body_hash, 'PX', ttl) end
redis.call('HINCRBY', KEYS[8], 'jobs_submitted', 1)
redis.call('HINCRBY', KEYS[8], 'items_submitted', n)
return {1, job_id}
"""
)

# KEYS: 1-5 job keys. ARGV: 1 item index, 2 now, 3 ttl ms
# Returns {1, options} | {0, 'final'} | {0, 'gone'}
BEGIN = (
    _JOB_HELPERS
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 'gone'} end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {0, 'final'} end
redis.call('SADD', KEYS[4], ARGV[1])
if redis.call('HGET', KEYS[1], 'status') == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[2])
end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[2])
touch_job(tonumber(ARGV[3]))
return {1, redis.call('HGET', KEYS[1], 'options')}
"""
)

# The only place an item becomes final: result written once (HSETNX), counters bumped only on
# that first write, entry acknowledged in the same atomic step (never before the write).
# KEYS: 1-5 job keys, 6 item stream, 7 stats, 8 callback stream, 9 dead-letter stream
# ARGV: 1 group, 2 entry id, 3 item index, 4 state, 5 record json, 6 now, 7 ttl ms,
#       8 dead-letter flag, 9 dead-letter fields json (flat list), 10 dead maxlen, 11 maxlen
# Returns -1 job gone | 0 duplicate | 1 recorded | 2 recorded and the job is complete
FINISH = (
    _JOB_HELPERS
    + """
redis.call('XACK', KEYS[6], ARGV[1], ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HSETNX', KEYS[2], ARGV[3], ARGV[5]) == 0 then return 0 end
local state = ARGV[4]
redis.call('HINCRBY', KEYS[1], state, 1)
redis.call('HINCRBY', KEYS[7], 'items_' .. state, 1)
redis.call('HSET', KEYS[1], 'updated_at', ARGV[6])
if ARGV[8] == '1' then
  redis.call('HINCRBY', KEYS[7], 'items_dead_lettered', 1)
  redis.call('XADD', KEYS[9], 'MAXLEN', '~', ARGV[10], '*', unpack(cjson.decode(ARGV[9])))
end
local result = 1
if complete(ARGV[6], KEYS[7], KEYS[8], ARGV[11]) then result = 2 end
touch_job(tonumber(ARGV[7]))
return result
"""
)

# KEYS: 1-5 job keys, 6 stats, 7 callback stream
# ARGV: 1 now, 2 ttl ms, 3 cancelled record json, 4 maxlen
# Returns 0 unknown job | 1 ok (also when the job had already ended)
CANCEL = (
    _JOB_HELPERS
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'done' or status == 'failed' or status == 'cancelled' then return 1 end
local total = tonumber(redis.call('HGET', KEYS[1], 'total'))
local n = 0
for i = 0, total - 1 do
  local idx = tostring(i)
  if redis.call('HEXISTS', KEYS[2], idx) == 0 and redis.call('SISMEMBER', KEYS[4], idx) == 0 then
    redis.call('HSET', KEYS[2], idx, ARGV[3])
    n = n + 1
  end
end
redis.call('HINCRBY', KEYS[1], 'cancelled', n)
redis.call('HINCRBY', KEYS[6], 'items_cancelled', n)
redis.call('HINCRBY', KEYS[6], 'jobs_cancelled', 1)
redis.call('HSET', KEYS[1], 'status', 'cancelled', 'updated_at', ARGV[1])
complete(ARGV[1], KEYS[6], KEYS[7], ARGV[4])
touch_job(tonumber(ARGV[2]))
return 1
"""
)

# Give an entry back without acknowledging it: it stays in the group's pending list with an
# idle time that makes the reaper (XAUTOCLAIM) hand it out after the requested delay.
# Only the current owner may release. KEYS: 1-5 job keys, 6 stream
# ARGV: 1 group, 2 consumer, 3 entry id, 4 item index or '', 5 idle ms, 6 delivery count,
#       7 error json or '', 8 ttl ms
RELEASE = """
local p = redis.call('XPENDING', KEYS[6], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #p == 0 then return 0 end
redis.call('XCLAIM', KEYS[6], ARGV[1], ARGV[2], 0, ARGV[3],
           'IDLE', ARGV[5], 'RETRYCOUNT', ARGV[6], 'JUSTID')
if ARGV[4] ~= '' and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SREM', KEYS[4], ARGV[4])
  if ARGV[7] ~= '' then
    redis.call('HSET', KEYS[5], ARGV[4], ARGV[7])
    redis.call('PEXPIRE', KEYS[5], ARGV[8])
  end
end
return 1
"""

# In-flight heartbeat: reset the idle time of entries this consumer still owns (JUSTID keeps
# the delivery count). Entries another worker already reclaimed are left alone.
# KEYS: 1 stream. ARGV: 1 group, 2 consumer, 3.. entry ids
TOUCH = """
local n = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p > 0 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    n = n + 1
  end
end
return n
"""

# Reaper: XAUTOCLAIM entries idle beyond the visibility timeout and report each one's
# delivery count (which XAUTOCLAIM itself does not return).
# KEYS: 1 stream. ARGV: 1 group, 2 consumer, 3 min idle ms, 4 cursor, 5 count
# Returns {next cursor, {{id, fields, deliveries}, ...}, number of trimmed (lost) entries}
RECLAIM = """
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local out = {}
for _, e in ipairs(r[2]) do
  if e and e[2] then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
    local n = 1
    if #p > 0 then n = p[1][4] end
    table.insert(out, {e[1], e[2], n})
  end
end
local lost = 0
if r[3] then lost = #r[3] end
return {r[1], out, lost}
"""

# KEYS: 1 job hash, 2 callback stream. ARGV: 1 group, 2 entry id, 3 status, 4 attempts, 5 error
FINISH_CALLBACK = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'callback_status', ARGV[3], 'callback_attempts', ARGV[4],
             'callback_error', ARGV[5])
end
return redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
"""

# Worker liveness on the server's clock (pods' clocks may disagree). A live worker is also a
# member of every stream's group: before Redis 7.2 an XREADGROUP that returns nothing creates
# no consumer, so an idle worker would otherwise be missing from the group's consumer count.
# KEYS: 1 workers zset, 2.. streams. ARGV: 1 consumer, 2 ttl ms, 3 group
HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 2, #KEYS do
  redis.pcall('XGROUP', 'CREATECONSUMER', KEYS[i], ARGV[3], ARGV[1])  -- no group yet: skip
end
return now
"""

# Forget group members whose heartbeat expired (or never beat) and that hold no pending
# entry: checked and deleted atomically, so no entry is delivered to one in between.
# KEYS: 1 workers zset, 2 stream. ARGV: 1 group. Returns the number dropped.
DROP_GONE_CONSUMERS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[2], ARGV[1])
if not ok then return 0 end
local dropped = 0
for _, c in ipairs(consumers) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  local expiry = redis.call('ZSCORE', KEYS[1], info['name'])
  if tonumber(info['pending']) == 0 and (not expiry or tonumber(expiry) <= now) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[2], ARGV[1], info['name'])
    dropped = dropped + 1
  end
end
return dropped
"""

# KEYS: 1 workers zset. Returns the number of workers whose heartbeat has not expired.
ALIVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""
