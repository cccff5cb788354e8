"""Lua scripts of the Redis backend; each runs atomically on the server.

Every script that writes checks everything first and writes last, and starts
with a ``#!lua`` shebang, so Redis 7 refuses it up front when the server is out
of memory instead of failing it half way (ADR 0021). Times come from the
server's ``TIME``, as integer microseconds since the epoch.

The global log is a hash from position to event; each event is a
MessagePack array (encoded stream id, version, position, recorded at as a
MessagePack timestamp, and the `EncodedMessage` as the array (id, type name,
schema version, payload)). The client packs the message and the append script
puts the rest in front. A stream is a list of its events' positions. A read
script returns a whole page as one MessagePack value that the client decodes
in one call (ADR 0028). Bus entries hold ``i`` (id), ``t`` (type name), ``s``
(schema version) and ``p`` (payload); dead letters add ``a`` (attempts), ``e``
(error) and ``f`` (failed at, as a decimal string: ``%06d`` keeps the
microseconds, where a Lua number would print as 1.7e+15).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ACK",
    "APPEND",
    "DEAD_LETTER",
    "PUBLISH",
    "READ",
    "READ_ALL",
    "REPLAY",
    "SAVE_SNAPSHOT",
]

#: KEYS: stream (``{prefix}:s:<encoded stream id>``), global log, event-id hash.
#: ARGV: expected version ('' for any), then (id, packed `EncodedMessage`) per
#: event.
#: Returns one MessagePack array: ['A', version, first position] for a new
#: append (its positions are consecutive), ['R', version, positions...] for an
#: exact retry, ['C', actual version] for a version conflict, ['D', event id]
#: for an event id stored elsewhere. One packed value is one bulk reply, which
#: the client decodes in one call instead of parsing a reply element by element.
APPEND: Final = """#!lua
local stream, log, ids = KEYS[1], KEYS[2], KEYS[3]
-- Encoded stream ids hold no ':' or '}', so this is exactly the encoded id.
local k = string.match(stream, '}:s:([^:}]*)$')
local expected, n = ARGV[1], (#ARGV - 1) / 2
local head = string.char(0x95)
local found = {}
-- unpack() is bounded by the Lua stack, so names go in chunks of 500.
for first = 1, n, 500 do
  local names = {}
  for i = first, math.min(first + 499, n) do names[#names + 1] = ARGV[i * 2] end
  local positions = redis.call('HMGET', ids, unpack(names))
  for j = 1, #names do
    if positions[j] then found[#found + 1] = {first + j - 1, positions[j]} end
  end
end
if #found > 0 then
  -- A retry only if every event is stored, in this stream, in this order.
  local mine = head .. cmsgpack.pack(k)
  local first_version
  local result = {'R', 0}
  for j = 1, #found do
    local i, position = found[j][1], found[j][2]
    local event = redis.call('HGET', log, position)
    local version
    if event and string.sub(event, 1, #mine) == mine then
      local _, v = cmsgpack.unpack_one(event, #mine)
      version = v
    end
    if first_version == nil and version then first_version = version - i + 1 end
    if #found < n or not version or version ~= first_version + i - 1 then
      return cmsgpack.pack({'D', ARGV[i * 2]})
    end
    result[2] = version
    result[#result + 1] = tonumber(position)
  end
  return cmsgpack.pack(result)
end
local version = redis.call('LLEN', stream)
if expected ~= '' then
  local want = tonumber(expected)
  if (want == -1 and version == 0) or (want ~= -1 and want ~= version) then
    return cmsgpack.pack({'C', version})
  end
end
if n == 0 then return cmsgpack.pack({'A', version, 0}) end
local position = redis.call('HLEN', log)
local now = redis.call('TIME')
-- MessagePack timestamp 64: nanoseconds << 34 | seconds (seconds < 2^32).
local at = string.char(0xd7, 0xff)
  .. struct.pack('>I4I4', tonumber(now[2]) * 4000, tonumber(now[1]))
local result = cmsgpack.pack({'A', version + n, position + 1})
local events, positions, index = {}, {}, {}
for i = 1, n do
  version = version + 1
  position = position + 1
  events[#events + 1] = position
  events[#events + 1] = head .. cmsgpack.pack(k, version, position) .. at
    .. ARGV[i * 2 + 1]
  positions[#positions + 1] = position
  index[#index + 1] = ARGV[i * 2]
  index[#index + 1] = position
  if #positions == 500 or i == n then
    redis.call('HSET', log, unpack(events))
    redis.call('RPUSH', stream, unpack(positions))
    redis.call('HSET', ids, unpack(index))
    events, positions, index = {}, {}, {}
  end
end
return result
"""

#: KEYS: stream, global log. ARGV: events to skip (the version read after),
#: page size.
#: Returns one MessagePack array of the page's stored events, as stored.
READ: Final = """#!lua flags=no-writes
local first = tonumber(ARGV[1])
local positions = redis.call('LRANGE', KEYS[1], first, first + ARGV[2] - 1)
local out = {struct.pack('>BI4', 0xdd, #positions)}
for chunk = 1, #positions, 500 do
  local events = redis.call('HMGET', KEYS[2],
    unpack(positions, chunk, math.min(chunk + 499, #positions)))
  for j = 1, #events do out[#out + 1] = events[j] end
end
return table.concat(out)
"""

#: KEYS: global log. ARGV: first position, page size.
#: Returns one MessagePack array of the page's stored events, as stored.
READ_ALL: Final = """#!lua flags=no-writes
local first = tonumber(ARGV[1])
local last = math.min(first + tonumber(ARGV[2]) - 1, redis.call('HLEN', KEYS[1]))
local out = {struct.pack('>BI4', 0xdd, math.max(last - first + 1, 0))}
for chunk = first, last, 500 do
  local names = {}
  for position = chunk, math.min(chunk + 499, last) do
    names[#names + 1] = position
  end
  local events = redis.call('HMGET', KEYS[1], unpack(names))
  for j = 1, #events do out[#out + 1] = events[j] end
end
return table.concat(out)
"""

#: KEYS: snapshot hash. ARGV: version, aggregate type, schema version, state.
#: Returns 1 if stored, 0 if a newer snapshot is kept.
#: Versions reach 2**63 - 1, beyond the integers a Lua number holds exactly
#: (2**53), so they are compared as decimal strings (no sign, no leading
#: zeros): by length, then in parts short enough to be exact numbers.
SAVE_SNAPSHOT: Final = """#!lua
local function older(a, b)
  if #a ~= #b then return #a < #b end
  if #a <= 15 then return tonumber(a) < tonumber(b) end
  local cut = #a - 9
  local high_a = tonumber(string.sub(a, 1, cut))
  local high_b = tonumber(string.sub(b, 1, cut))
  if high_a ~= high_b then return high_a < high_b end
  return tonumber(string.sub(a, cut + 1)) < tonumber(string.sub(b, cut + 1))
end
local current = redis.call('HGET', KEYS[1], 'v')
if current and older(ARGV[1], current) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'a', ARGV[2], 'n', ARGV[3], 'd', ARGV[4])
return 1
"""

#: KEYS: idempotency marker of the message id.
#: ARGV: group stream key prefix, type set key prefix, '1' for a command,
#: idempotency window in ms, id, type, schema version, payload, then the
#: encoded type names the message is delivered under. Each queued entry holds
#: those names, space-separated, in its field ``n``, so that a consumer can
#: tell a type its group's local handlers take without decoding (ADR 0033).
#: Returns the number of groups it was queued for, 0 for a republished id,
#: -1 for a command no group handles (nothing is written then).
PUBLISH: Final = """#!lua
local groups, seen = {}, {}
for j = 9, #ARGV do
  for _, group in ipairs(redis.call('SMEMBERS', ARGV[2] .. ARGV[j])) do
    if not seen[group] then
      seen[group] = true
      groups[#groups + 1] = group
    end
  end
end
if ARGV[3] == '1' and #groups == 0 then return -1 end
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[4]) then return 0 end
local names = table.concat(ARGV, ' ', 9)
for _, group in ipairs(groups) do
  redis.call('XADD', ARGV[1] .. group, '*', 'i', ARGV[5], 't', ARGV[6],
    's', ARGV[7], 'p', ARGV[8], 'n', names)
end
return #groups
"""

#: KEYS: group stream, error hash. ARGV: consumer group, then entry ids.
#: Acknowledges the handled entries, deletes them from the queue and forgets
#: their recorded errors, atomically; it only frees memory, so it may run when
#: the server is out of memory. Returns the number acknowledged.
ACK: Final = """#!lua flags=allow-oom
local acked = redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
redis.call('HDEL', KEYS[2], unpack(ARGV, 2))
return acked
"""

#: KEYS: group stream, dead-letter stream, dead-letter index, error hash.
#: ARGV: consumer group, entry id, attempts, error ('' to use the recorded one).
#: Returns 1 if moved, 0 if the entry was already gone.
DEAD_LETTER: Final = """#!lua
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])[1]
if not entry then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HDEL', KEYS[4], ARGV[2])
  return 0
end
local v = {}
for k = 1, #entry[2], 2 do v[entry[2][k]] = entry[2][k + 1] end
local err = ARGV[4]
if err == '' then
  err = redis.call('HGET', KEYS[4], ARGV[2])
    or 'not acknowledged within the visibility timeout (the consumer died or hung)'
end
local now = redis.call('TIME')
local fields = {'i', v.i, 't', v.t, 's', v.s, 'p', v.p, 'a', ARGV[3], 'e', err,
  'f', now[1] .. string.format('%06d', now[2])}
-- Entries queued before the type names were kept have no field n.
if v.n then fields[#fields + 1] = 'n'; fields[#fields + 1] = v.n end
local id = redis.call('XADD', KEYS[2], '*', unpack(fields))
redis.call('HSET', KEYS[3], v.i, id)
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[4], ARGV[2])
return 1
"""

#: KEYS: group stream, dead-letter stream, dead-letter index. ARGV: message id.
#: Returns 1 if requeued, 0 if no such dead letter.
REPLAY: Final = """#!lua
local id = redis.call('HGET', KEYS[3], ARGV[1])
if not id then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
local entry = redis.call('XRANGE', KEYS[2], id, id)[1]
if not entry then return 0 end
local v = {}
for k = 1, #entry[2], 2 do v[entry[2][k]] = entry[2][k + 1] end
local fields = {'i', v.i, 't', v.t, 's', v.s, 'p', v.p}
if v.n then fields[#fields + 1] = 'n'; fields[#fields + 1] = v.n end
redis.call('XADD', KEYS[1], '*', unpack(fields))
redis.call('XDEL', KEYS[2], id)
return 1
"""
