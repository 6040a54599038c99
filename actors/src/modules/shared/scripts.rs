//! The Lua scripts of the shared bus (docs/modules.md#several-instances): every change of
//! a module's registration, queue, held list, consumer lease and account is one script,
//! so Redis applies it atomically and counts it in the same step. Keys are built in the
//! scripts from the prefix (`ARGV[1]`): `{p}:bus:reg`, `{p}:bus:q:{name}`, ... (one Redis,
//! not Redis Cluster, as the event log).
//!
//! Encodings. A queued message is `"<exp> <envelope>"` (`exp`: absolute ms of its TTL, 0:
//! none, only while a consumer holds the lease); a held one `"<t> <exp> <envelope>"` (`t`:
//! the module's take number, increasing, which confirmations name); a dead letter
//! `"<reason> <ms> <module> <envelope>"`. Envelopes are never decoded in Lua.

/// Helpers every script starts with.
const COMMON: &str = r#"
local p = ARGV[1]
local function k(s, n) return p .. ':bus:' .. s .. ':' .. n end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function split(x)
  local i = string.find(x, ' ', 1, true)
  return string.sub(x, 1, i - 1), string.sub(x, i + 1)
end
local function dead(name, reason, msg, cap)
  local d = p .. ':bus:dead'
  redis.call('RPUSH', d, reason .. ' ' .. string.format('%.0f', now_ms()) .. ' ' .. name .. ' ' .. msg)
  redis.call('LTRIM', d, -tonumber(cap), -1)
  redis.call('HINCRBY', p .. ':bus:counters', 'dead_letters', 1)
  redis.call('HINCRBY', k('stats', name), 'msg_dead', 1)
  if reason == 'expired' then redis.call('HINCRBY', k('stats', name), 'expired', 1) end
end
-- Held messages back to the front of the queue, in order (ttl 0 ones are dead: expired).
local function give_back(name, cap)
  local held, q = k('held', name), k('q', name)
  local n = 0
  while true do
    local x = redis.call('RPOP', held)
    if not x then break end
    local _, rest = split(x)
    local exp, msg = split(rest)
    if tonumber(exp) == 0 then dead(name, 'expired', msg, cap) else redis.call('LPUSH', q, rest) end
    n = n + 1
  end
  return n
end
local function deliver(to, msg, ttl, inbox_cap, offline_cap, refuse, cap)
  local st = k('stats', to)
  redis.call('HINCRBY', st, 'msg_sent', 1)
  local holder = redis.call('GET', k('at', to))
  if (not holder) and (refuse == '1' or ttl == 0) then
    redis.call('HINCRBY', st, 'msg_refused', 1)
    return 'offline'
  end
  local q = k('q', to)
  local n = redis.call('LLEN', q)
  if holder and n >= inbox_cap then
    redis.call('HINCRBY', st, 'msg_refused', 1)
    redis.call('HINCRBY', st, 'failed', 1)
    return 'full'
  end
  local exp = 0
  if ttl > 0 then exp = now_ms() + ttl end
  redis.call('RPUSH', q, string.format('%.0f', exp) .. ' ' .. msg)
  if (not holder) and n + 1 > offline_cap then
    local _, om = split(redis.call('LPOP', q))
    dead(to, 'offline_queue_full', om, cap)
  end
  if holder and n == 0 then redis.call('PUBLISH', p .. ':bus:ctl', 'wake ' .. to .. ' ' .. holder) end
  return 'ok'
end
"#;

/// ARGV: p, from, to, envelope, ttl, inbox_cap, offline_cap, refuse, dead_cap,
/// request_timeout_ms (0: not a request), me, id, correlation ('' none).
/// Answers `{outcome}`: ok, offline, full, unknown, or replied (a reply to a request
/// waiting on another instance, published to it; not in the accounts yet: that instance
/// counts it once, as it hands it to the request or sends it on as a late reply).
const SEND: &str = r#"
local from, to, msg = ARGV[2], ARGV[3], ARGV[4]
local reg, cnt = p .. ':bus:reg', p .. ':bus:counters'
if ARGV[13] ~= '' then
  local pk = p .. ':bus:pending:' .. ARGV[13]
  local v = redis.call('GET', pk)
  if v then
    local inst, requester = split(v)
    if requester == to and inst == ARGV[11] then
      -- Waited here and timed out meanwhile: a plain message, as a late reply.
      redis.call('DEL', pk)
    elseif requester == to then
      -- Counted in the accounts by the instance that waits: handed to the request there
      -- (count_reply), or, timed out there meanwhile, sent on as a plain message (send).
      redis.call('DEL', pk)
      redis.call('HINCRBY', cnt, 'replies', 1)
      redis.call('PUBLISH', p .. ':bus:ctl', 'reply ' .. inst .. ' ' .. msg)
      return {'replied'}
    end
  end
end
if redis.call('HEXISTS', reg, to) == 0 then
  redis.call('HINCRBY', cnt, 'refused', 1)
  return {'unknown'}
end
local r = deliver(to, msg, tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], ARGV[9])
if r == 'ok' then
  redis.call('HINCRBY', cnt, 'routed', 1)
  if redis.call('HEXISTS', reg, from) == 1 then redis.call('HINCRBY', k('stats', from), 'sent', 1) end
  if tonumber(ARGV[10]) > 0 then
    redis.call('SET', p .. ':bus:pending:' .. ARGV[12], ARGV[11] .. ' ' .. from, 'PX', ARGV[10])
  end
else
  redis.call('HINCRBY', cnt, 'refused', 1)
end
return {r}
"#;

/// ARGV: p, from, (unused), envelope, ttl, inbox_cap, offline_cap, refuse, dead_cap.
/// Every registered module but the sender. Answers `{accepted, refused names...}`.
const BROADCAST: &str = r#"
local from, msg = ARGV[2], ARGV[4]
local reg, cnt = p .. ':bus:reg', p .. ':bus:counters'
local out = {0}
for _, to in ipairs(redis.call('HKEYS', reg)) do
  if to ~= from then
    local r = deliver(to, msg, tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], ARGV[9])
    if r == 'ok' then out[1] = out[1] + 1 else out[#out + 1] = to end
  end
end
redis.call('HINCRBY', cnt, 'broadcasts', 1)
redis.call('HINCRBY', cnt, 'routed', 1)
if redis.call('HEXISTS', reg, from) == 1 then redis.call('HINCRBY', k('stats', from), 'sent', 1) end
return out
"#;

/// ARGV: p, to, from. A reply handed to a request waiting on this instance (sent here,
/// or from another instance and published here): counted in the accounts (the bus
/// counter `replies` is this instance's, or the `send` script's).
const COUNT_REPLY: &str = r#"
local reg = p .. ':bus:reg'
if redis.call('HEXISTS', reg, ARGV[2]) == 1 then
  redis.call('HINCRBY', k('stats', ARGV[2]), 'msg_sent', 1)
  redis.call('HINCRBY', k('stats', ARGV[2]), 'received', 1)
end
if redis.call('HEXISTS', reg, ARGV[3]) == 1 then redis.call('HINCRBY', k('stats', ARGV[3]), 'sent', 1) end
return 1
"#;

/// ARGV: p, name, me, n, dead_cap, lease_ms. Answers `{'ok', "<t> <exp> <envelope>"...}`,
/// `{'wait', ms}` (the previous holder is still giving back), `{'lost'}` (another
/// instance holds the lease; one Redis lost is taken again), or `{'gone'}` (not
/// registered: deleted, or Redis lost its data; no key is written, so a take racing a
/// deletion leaves nothing behind).
const TAKE: &str = r#"
local name, me, n = ARGV[2], ARGV[3], tonumber(ARGV[4])
if redis.call('HEXISTS', p .. ':bus:reg', name) == 0 then return {'gone'} end
local at = redis.call('GET', k('at', name))
if not at then
  redis.call('SET', k('at', name), me, 'PX', ARGV[6])
elseif at ~= me then
  return {'lost'}
end
local prev = redis.call('GET', k('prev', name))
if prev and prev ~= me then return {'wait', tostring(redis.call('PTTL', k('prev', name)))} end
if redis.call('GET', k('hown', name)) ~= me then
  give_back(name, ARGV[5])
  redis.call('SET', k('hown', name), me)
end
local held, q, st = k('held', name), k('q', name), k('stats', name)
local out = {'ok'}
local now = now_ms()
while #out - 1 < n do
  local x = redis.call('LPOP', q)
  if not x then break end
  local exp, msg = split(x)
  exp = tonumber(exp)
  if exp > 0 and exp <= now then
    dead(name, 'expired', msg, ARGV[5])
  else
    local t = redis.call('HINCRBY', st, 'tseq', 1)
    redis.call('RPUSH', held, t .. ' ' .. x)
    out[#out + 1] = t .. ' ' .. x
  end
end
return out
"#;

/// ARGV: p, name, me, upto, failed (0: none), dead_cap. Idempotent: confirms held
/// messages up to take number `upto`. Answers how many.
const CONFIRM: &str = r#"
local name, me = ARGV[2], ARGV[3]
if redis.call('GET', k('hown', name)) ~= me then return 0 end
local held, st = k('held', name), k('stats', name)
local upto, failed = tonumber(ARGV[4]), tonumber(ARGV[5])
local c = 0
while true do
  local x = redis.call('LINDEX', held, 0)
  if not x then break end
  local t, rest = split(x)
  t = tonumber(t)
  if t > upto then break end
  redis.call('LPOP', held)
  if t == failed then
    local _, msg = split(rest)
    dead(name, 'handler_failed', msg, ARGV[6])
  else
    redis.call('HINCRBY', st, 'received', 1)
  end
  c = c + 1
end
return c
"#;

/// ARGV: p, name, me, after. Held messages taken after take number `after` (never
/// handed to the connection) back to the front of the queue.
const UNTAKE: &str = r#"
local name, me = ARGV[2], ARGV[3]
if redis.call('GET', k('hown', name)) ~= me then return 0 end
local held, q = k('held', name), k('q', name)
local n = 0
while true do
  local x = redis.call('LINDEX', held, -1)
  if not x then break end
  local t, rest = split(x)
  if tonumber(t) <= tonumber(ARGV[4]) then break end
  redis.call('RPOP', held)
  redis.call('LPUSH', q, rest)
  n = n + 1
end
return n
"#;

/// ARGV: p, name, me, release (1/0), offline_cap, dead_cap. The connection is gone:
/// what it held goes back to the front of the queue; with `release` the lease is given
/// up (only if ours), the `ttl: 0` messages are dead-lettered (`expired`: they were for
/// a connected module only, as on one instance) and the queue bounded to the offline
/// queue again.
const LEAVE: &str = r#"
local name, me = ARGV[2], ARGV[3]
local n = 0
if redis.call('GET', k('hown', name)) == me then n = give_back(name, ARGV[6]) end
local freed = false
if ARGV[4] == '1' and redis.call('GET', k('at', name)) == me then
  redis.call('DEL', k('at', name))
  freed = true
end
if redis.call('GET', k('prev', name)) == me then redis.call('DEL', k('prev', name)) end
if freed then
  local q = k('q', name)
  -- ttl 0 messages waited only for a connection (queued while held): dead now (expired).
  local all = redis.call('LRANGE', q, 0, -1)
  local keep = {}
  for _, x in ipairs(all) do
    local exp, msg = split(x)
    if tonumber(exp) == 0 then dead(name, 'expired', msg, ARGV[6]) else keep[#keep + 1] = x end
  end
  if #keep < #all then
    redis.call('DEL', q)
    for i = 1, #keep, 1000 do
      redis.call('RPUSH', q, unpack(keep, i, math.min(i + 999, #keep)))
    end
  end
  while redis.call('LLEN', q) > tonumber(ARGV[5]) do
    local _, msg = split(redis.call('LPOP', q))
    dead(name, 'offline_queue_full', msg, ARGV[6])
  end
end
local holder = redis.call('GET', k('at', name))
if holder then redis.call('PUBLISH', p .. ':bus:ctl', 'wake ' .. name .. ' ' .. holder) end
return n
"#;

/// ARGV: p, name, me, lease_ms. Takes the consumer lease (from a previous holder too,
/// who is then `prev` until it has given back). Answers the previous holder ('' none),
/// or `-` when the module is not registered.
const ATTACH: &str = r#"
local name, me = ARGV[2], ARGV[3]
if redis.call('HEXISTS', p .. ':bus:reg', name) == 0 then return '-' end
local at = k('at', name)
local old = redis.call('GET', at)
redis.call('SET', at, me, 'PX', ARGV[4])
redis.call('HINCRBY', k('stats', name), 'connections', 1)
if old and old ~= me then
  redis.call('SET', k('prev', name), old, 'PX', ARGV[4])
  redis.call('PUBLISH', p .. ':bus:ctl', 'attached ' .. name .. ' ' .. me)
end
return old or ''
"#;

/// ARGV: p, name, me, lease_ms. 1 when renewed, 2 when taken again (Redis lost it: it
/// expired during an outage, or a failover lost it), 0 when another instance holds it,
/// 3 when the module is not registered (deleted, or Redis lost its data: nothing written;
/// the mirror retires the module or gives the registration back).
const RENEW: &str = r#"
if redis.call('HEXISTS', p .. ':bus:reg', ARGV[2]) == 0 then return 3 end
local at = redis.call('GET', k('at', ARGV[2]))
if at == ARGV[3] then
  redis.call('PEXPIRE', k('at', ARGV[2]), ARGV[4])
  return 1
end
if not at then
  redis.call('SET', k('at', ARGV[2]), ARGV[3], 'PX', ARGV[4])
  return 2
end
return 0
"#;

/// ARGV: p, name, dead_cap. A module nobody holds: its expired messages dead-lettered,
/// and its `ttl: 0` ones (queued while a holder that died had the lease).
const SWEEP: &str = r#"
local name = ARGV[2]
if redis.call('EXISTS', k('at', name)) == 1 then return 0 end
local q = k('q', name)
local all = redis.call('LRANGE', q, 0, -1)
local now = now_ms()
local keep, gone = {}, 0
for _, x in ipairs(all) do
  local exp, msg = split(x)
  exp = tonumber(exp)
  if exp <= now then dead(name, 'expired', msg, ARGV[3]); gone = gone + 1 else keep[#keep + 1] = x end
end
if gone > 0 then
  redis.call('DEL', q)
  for i = 1, #keep, 1000 do
    redis.call('RPUSH', q, unpack(keep, i, math.min(i + 999, #keep)))
  end
end
return gone
"#;

/// ARGV: p, name, entry JSON, max_modules. Answers ok, exists, too_many.
const REGISTER: &str = r#"
local reg = p .. ':bus:reg'
if redis.call('HEXISTS', reg, ARGV[2]) == 1 then return 'exists' end
if redis.call('HLEN', reg) >= tonumber(ARGV[4]) then return 'too_many' end
redis.call('HSET', reg, ARGV[2], ARGV[3])
redis.call('SET', p .. ':bus:epoch', '1')
redis.call('PUBLISH', p .. ':bus:ctl', 'registered ' .. ARGV[2])
return 'ok'
"#;

/// ARGV: p, name, dead_cap. Unregisters: what waits is dead-lettered (module_deleted).
const DELETE: &str = r#"
local name = ARGV[2]
if redis.call('HDEL', p .. ':bus:reg', name) == 0 then return 0 end
for _, key in ipairs({k('held', name), k('q', name)}) do
  for _, x in ipairs(redis.call('LRANGE', key, 0, -1)) do
    local a, rest = split(x)
    if key == k('held', name) then a, rest = split(rest) end
    dead(name, 'module_deleted', rest, ARGV[3])
  end
end
redis.call('DEL', k('held', name), k('q', name), k('at', name), k('prev', name), k('hown', name), k('stats', name))
redis.call('PUBLISH', p .. ':bus:ctl', 'deleted ' .. name)
return 1
"#;

/// ARGV: p, name. `{stats hash as pairs..., '#q', len, '#held', len, '#at', holder}`.
const STATUS: &str = r#"
local name = ARGV[2]
local out = redis.call('HGETALL', k('stats', name))
out[#out + 1] = '#q'
out[#out + 1] = tostring(redis.call('LLEN', k('q', name)))
out[#out + 1] = '#held'
out[#out + 1] = tostring(redis.call('LLEN', k('held', name)))
out[#out + 1] = '#at'
out[#out + 1] = redis.call('GET', k('at', name)) or ''
return out
"#;

/// Which script an operation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lua {
    Send,
    Broadcast,
    CountReply,
    Take,
    Confirm,
    Untake,
    Leave,
    Attach,
    Renew,
    Sweep,
    Register,
    Delete,
    Status,
}

/// The scripts, built once (their SHA-1 for `EVALSHA`).
pub struct Scripts {
    all: Vec<(Lua, redis::Script, String)>,
}

impl Scripts {
    pub fn new() -> Self {
        let bodies = [
            (Lua::Send, SEND),
            (Lua::Broadcast, BROADCAST),
            (Lua::CountReply, COUNT_REPLY),
            (Lua::Take, TAKE),
            (Lua::Confirm, CONFIRM),
            (Lua::Untake, UNTAKE),
            (Lua::Leave, LEAVE),
            (Lua::Attach, ATTACH),
            (Lua::Renew, RENEW),
            (Lua::Sweep, SWEEP),
            (Lua::Register, REGISTER),
            (Lua::Delete, DELETE),
            (Lua::Status, STATUS),
        ];
        let all = bodies
            .into_iter()
            .map(|(l, b)| {
                let text = format!("{COMMON}{b}");
                (l, redis::Script::new(&text), text)
            })
            .collect();
        Self { all }
    }

    pub fn sha(&self, l: Lua) -> &str {
        self.all.iter().find(|(x, _, _)| *x == l).map(|(_, s, _)| s.get_hash()).unwrap_or_default()
    }

    /// `SCRIPT LOAD` of every script (after each connection, and on `NOSCRIPT`).
    pub fn load_all(&self) -> Vec<redis::Cmd> {
        self.all
            .iter()
            .map(|(_, _, text)| {
                let mut c = redis::cmd("SCRIPT");
                c.arg("LOAD").arg(text.as_str());
                c
            })
            .collect()
    }
}

impl Default for Scripts {
    fn default() -> Self {
        Self::new()
    }
}
