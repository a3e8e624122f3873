"""The Lua scripts of the Redis Streams event log (see :mod:`mainspring.storage.redisstreams` for
the layout). Each runs atomically inside Redis.

Numbers: Lua's are doubles, exact up to 2**53; event times in µs since the epoch (about 2**51
today), offsets, byte counts and times in ms stay well below. They are written back with
``%d``, never with Lua's default ``%.14g``.
"""

from __future__ import annotations

_COMMON = """
local function fmt(x) return string.format('%d', x) end
local function field(entry, name)
    local f = entry[2]
    for i = 1, #f, 2 do
        if f[i] == name then return tonumber(f[i + 1]) end
    end
    return nil
end
local function offset_of(entry) return tonumber(string.match(entry[1], '^(%d+)')) end
local function entry_at(stream, offset)
    local found = redis.call('XRANGE', stream, fmt(offset) .. '-1', fmt(offset) .. '-1')[1]
    if not found then
        error('offset ' .. fmt(offset) .. ' is missing from ' .. stream .. ': was it XDELeted?')
    end
    return found
end
-- the smallest offset in [lo, hi) whose entry has field `name` >= x (hi if none); the field
-- must not decrease with the offset
local function search(stream, lo, hi, name, x)
    while lo < hi do
        local mid = math.floor((lo + hi) / 2)
        if field(entry_at(stream, mid), name) >= x then hi = mid else lo = mid + 1 end
    end
    return lo
end
local function now_ms()
    local clock = redis.call('TIME')
    return tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end
"""

#: KEYS[1]: the batch's token; then per partition the batch touches: its stream, its state.
#: ARGV[1]: the dedupe window in ms; then per event: partition index (1-based), id, key (``""``
#: for none, else ``"="`` + key), event time in µs, size in bytes, headers, payload.
#: Returns the first offset the batch got in each partition.
PRODUCE = (
    _COMMON
    + """
local done = redis.call('GET', KEYS[1])
if done then return cjson.decode(done) end
local now = now_ms()
local places = (#KEYS - 1) / 2
local nxt, top, topn, bytes, at, firsts = {}, {}, {}, {}, {}, {}
for i = 1, places do
    local s = redis.call('HMGET', KEYS[2 * i + 1], 'next', 'm', 'c', 'a')
    nxt[i] = tonumber(s[1]) or 0
    -- never reuse an id, even if the state was lost
    local last = redis.call('XREVRANGE', KEYS[2 * i], '+', '-', 'COUNT', 1)[1]
    if last and offset_of(last) >= nxt[i] then nxt[i] = offset_of(last) + 1 end
    if s[2] then top[i] = s[2]; topn[i] = tonumber(s[2]) end
    bytes[i] = tonumber(s[3]) or 0
    at[i] = math.max(tonumber(s[4]) or 0, now)
    firsts[i] = nxt[i]
end
for j = 2, #ARGV, 7 do
    local i = tonumber(ARGV[j])
    local t = ARGV[j + 3]
    if topn[i] == nil or tonumber(t) > topn[i] then top[i] = t; topn[i] = tonumber(t) end
    local key = ARGV[j + 2]
    local id = fmt(nxt[i]) .. '-1'
    if key == '' then
        redis.call('XADD', KEYS[2 * i], id, 'i', ARGV[j + 1], 't', t, 'h', ARGV[j + 5],
            'p', ARGV[j + 6], 'm', top[i], 'c', fmt(bytes[i]), 'a', fmt(at[i]))
    else
        redis.call('XADD', KEYS[2 * i], id, 'i', ARGV[j + 1], 'k', string.sub(key, 2), 't', t,
            'h', ARGV[j + 5], 'p', ARGV[j + 6], 'm', top[i], 'c', fmt(bytes[i]), 'a', fmt(at[i]))
    end
    nxt[i] = nxt[i] + 1
    bytes[i] = bytes[i] + tonumber(ARGV[j + 4])
end
for i = 1, places do
    redis.call('HSET', KEYS[2 * i + 1], 'next', fmt(nxt[i]), 'm', top[i], 'c', fmt(bytes[i]),
        'a', fmt(at[i]))
end
redis.call('SET', KEYS[1], cjson.encode(firsts), 'PX', ARGV[1])
return firsts
"""
)

#: KEYS: the stream, its state. ARGV[1]: a time in µs. Returns the first offset whose event time
#: is at or after it (the end offset if none), or -1 when the running maximum cannot tell (an
#: event trimmed away had a later time than the first retained one): then the caller scans.
OFFSET_AT = (
    _COMMON
    + """
local T = tonumber(ARGV[1])
local high = tonumber(redis.call('HGET', KEYS[2], 'next')) or 0
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if not first then return high end
local low = offset_of(first)
if field(first, 't') >= T then return low end
if field(first, 'm') >= T then return -1 end
return search(KEYS[1], low + 1, high, 'm', T)
"""
)

#: KEYS: the stream, its state. ARGV: now in ms (``""``: the server's clock), the retention in ms
#: (``""``: none), in bytes (``""``: none). Returns how many events it removed.
RETAIN = (
    _COMMON
    + """
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
if not first then return 0 end
local low = offset_of(first)
local s = redis.call('HMGET', KEYS[2], 'next', 'c')
local high, total = tonumber(s[1]), tonumber(s[2])
if not high or not total then return 0 end
local keep = low
if ARGV[2] ~= '' then
    local now = now_ms()
    if ARGV[1] ~= '' then now = tonumber(ARGV[1]) end
    keep = search(KEYS[1], keep, high, 'a', now - tonumber(ARGV[2]))
end
if ARGV[3] ~= '' then
    -- c is the bytes appended before an entry: keeping from k keeps total - c(k) bytes
    keep = search(KEYS[1], keep, high, 'c', total - tonumber(ARGV[3]))
end
if keep <= low then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', fmt(keep) .. '-1')
"""
)

#: KEYS[1]: the group's members (a sorted set of session expiry times in ms). ARGV: the member,
#: the session timeout in ms. Refreshes the member, drops the expired ones, returns the others.
HEARTBEAT = (
    _COMMON
    + """
local now = now_ms()
local session = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], fmt(now + session), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. fmt(now))
redis.call('PEXPIRE', KEYS[1], fmt(3 * session))
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""
)
