//! Reconciling the shared log with this instance's history when Redis answers (at start
//! and after every outage), so that a Redis outage costs clients nothing.
//!
//! While Redis is unreachable the dispatcher keeps numbering in the same epoch, after the
//! last seq it had (`dispatcher/core/uplink.rs`): subscribers see one unbroken sequence.
//! When Redis answers, the bridge compares what Redis holds (`pos`: epoch E', seq R) with
//! the history (epoch E, last seq L; `synced` B: the last seq known to be in the log):
//!
//! - **No log in Redis** (a new Redis, or one restarted without its data, or flushed): the
//!   history becomes the log (`EXTEND` with no expected position): the entries kept are
//!   written to the Stream, `pos` = (E, L); numbering goes on from L. Nothing changes for
//!   clients.
//! - **Same epoch, consistent** (the entries both hold in (B, min(R, L)] are the same
//!   events): if R < L (this instance numbered on its own, or Redis lost a tail of
//!   writes, e.g. restarted from an older snapshot), the entries after R are written to the
//!   Stream and published, `pos` = (E, L); if R >= L (others appended meanwhile), the
//!   events after L are read from the Stream and delivered. No gap, no duplicate.
//! - **Same epoch, diverged** (another instance numbered the same seqs while this one was
//!   cut off): ids would mean two events; the log starts a new epoch (`RESET`), and the
//!   log's events after B, then what this instance numbered on its own, are appended to
//!   it. Every client re-syncs once (`recovered: false`); no event is lost, one may be
//!   seen once under each epoch.
//! - **Another epoch** (another instance made one, or this one started while Redis was
//!   unreachable, under a fresh local epoch): it is followed (history loaded from the
//!   Stream), and what this instance numbered on its own is appended to it.
//!
//! Every write is a compare-and-set on `pos` (one Lua script): when another instance
//! changed the log in between, the decision is made again.

use redis::aio::MultiplexedConnection;
use redis::Script;
use std::rc::Rc;
use std::sync::Arc;

use super::log::LogError;
use super::Shared;
use crate::dispatcher::{HistoryEntry, Inject, Origin, Preload, Rejoined};
use crate::events::Event;

/// Writes `(seq, envelope)` pairs into the stream and sets `pos` to (ARGV[3], ARGV[4]), if
/// `pos` is still (ARGV[1], ARGV[2]) (ARGV[1] empty: if there is no log; the stream is
/// emptied first). Entries above ARGV[8] are also published. Returns 1, or 0 when `pos`
/// changed.
const EXTEND: &str = r#"
local cur = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
if ARGV[1] == '' then
  if cur[1] then return 0 end
  redis.call('DEL', KEYS[2])
elseif cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then
  return 0
end
for i = 9, #ARGV, 2 do
  redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '0-' .. ARGV[i], 'e', ARGV[i + 1])
  if tonumber(ARGV[i]) > tonumber(ARGV[8]) then
    redis.call('PUBLISH', ARGV[6], ARGV[7] .. ' ' .. ARGV[i + 1])
  end
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[3], 'seq', ARGV[4])
return 1
"#;

/// Starts epoch ARGV[3] at seq 0 with an empty stream, if `pos` is still (ARGV[1], ARGV[2]).
const RESET: &str = r#"
local cur = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'epoch', ARGV[3], 'seq', 0)
return 1
"#;

/// Reconciles and returns the position to follow the log from.
pub(super) async fn reconcile(
    sh: &Rc<Shared>,
    conn: &mut MultiplexedConnection,
    snap: Rejoined,
) -> Result<(String, u64), LogError> {
    let latest = snap.latest_seq;
    for _ in 0..5 {
        let pos = sh.log.position(conn).await?;
        let synced = sh.synced.borrow().clone().filter(|(e, _)| *e == snap.epoch).map(|(_, s)| s);
        match pos {
            None => {
                if extend(sh, conn, None, &snap, 0, synced.unwrap_or(0)).await? {
                    tracing::info!(epoch = %snap.epoch, last_seq = latest, events = snap.entries.len(),
                        "No event log in Redis: this instance's history written to it.");
                    return Ok((snap.epoch.clone(), latest));
                }
            }
            Some((epoch, r)) if epoch == snap.epoch => {
                // From the last seq known to be in the log (or the oldest kept).
                let lo = synced.unwrap_or_else(|| snap.entries.first().map_or(latest, |e| e.seq().saturating_sub(1)));
                let hi = r.min(latest);
                let diverged = if hi > lo { diverged(sh, conn, &snap, lo, hi).await? } else { None };
                if let Some(theirs) = diverged {
                    let fresh = Origin::fresh();
                    let reset: i64 = sh
                        .log
                        .bounded(
                            Script::new(RESET)
                                .key(&sh.log.keys().pos)
                                .key(&sh.log.keys().log)
                                .arg(&epoch)
                                .arg(r)
                                .arg(fresh.epoch())
                                .invoke_async(conn),
                        )
                        .await?;
                    if reset == 1 {
                        tracing::warn!(old = %epoch, new = %fresh.epoch(), after = lo,
                            "Another instance numbered the same events while Redis was away: new shared epoch.");
                        let new_epoch = fresh.epoch().to_owned();
                        let _ = sh.dispatcher.send(Preload { origin: fresh, entries: Vec::new() }).await;
                        // The log's events after `lo`, then ours: every instance gets both.
                        append_events(sh, conn, theirs, &new_epoch).await?;
                        append_own(sh, conn, &snap.entries, lo, &new_epoch).await?;
                        return Ok((new_epoch, 0));
                    }
                } else {
                    if r >= latest {
                        catch_up(sh, conn, &epoch, latest, r).await?;
                        return Ok((epoch, r));
                    }
                    if extend(sh, conn, Some((&epoch, r)), &snap, r, lo).await? {
                        tracing::info!(%epoch, from = r, to = latest, "Events numbered while Redis was away written to the shared log.");
                        return Ok((epoch, latest));
                    }
                }
            }
            Some((epoch, _)) => {
                let loaded = sh.log.load(conn, sh.history).await?;
                let Some(loaded_epoch) = loaded.epoch.filter(|e| *e == epoch) else { continue };
                let origin = Origin::resume(loaded_epoch.clone(), loaded.last_seq).map_err(LogError::Protocol)?;
                let last = loaded.last_seq;
                let _ = sh.dispatcher.send(Preload { origin, entries: loaded.events }).await;
                tracing::info!(from = %snap.epoch, to = %loaded_epoch, last_seq = last, "Following the shared log's epoch.");
                append_own(sh, conn, &snap.entries, synced.unwrap_or(0), &loaded_epoch).await?;
                return Ok((loaded_epoch, last));
            }
        }
    }
    Err(LogError::Protocol("the shared log kept changing while it was reconciled".into()))
}

/// `EXTEND`: the entries after `from` written, `pos` moved to the history's last seq.
async fn extend(
    sh: &Rc<Shared>,
    conn: &mut MultiplexedConnection,
    expect: Option<(&str, u64)>,
    snap: &Rejoined,
    from: u64,
    publish_after: u64,
) -> Result<bool, LogError> {
    let keys = sh.log.keys();
    let script = Script::new(EXTEND);
    let mut inv = script.key(&keys.pos);
    inv.key(&keys.log);
    match expect {
        Some((e, s)) => inv.arg(e).arg(s.to_string()),
        None => inv.arg("").arg(""),
    };
    inv.arg(&snap.epoch)
        .arg(snap.latest_seq)
        .arg(sh.log.max_len())
        .arg(&keys.channel)
        .arg(sh.log.origin())
        .arg(publish_after);
    for e in snap.entries.iter().filter(|e| e.seq() > from) {
        inv.arg(e.seq()).arg(e.json.as_ref());
    }
    let done: i64 = sh.log.bounded(inv.invoke_async(conn)).await?;
    Ok(done == 1)
}

/// `None` when the stream and the history hold the same events in `(lo, hi]`; else the
/// stream's events after `lo` (another instance numbered them).
async fn diverged(
    sh: &Rc<Shared>,
    conn: &mut MultiplexedConnection,
    snap: &Rejoined,
    lo: u64,
    hi: u64,
) -> Result<Option<Vec<Event>>, LogError> {
    let theirs: Vec<Event> =
        sh.log.after(conn, &snap.epoch, lo, sh.history.max(1)).await?.into_iter().map(|(e, _)| e).collect();
    let ours: Vec<&HistoryEntry> = snap.entries.iter().filter(|e| e.seq() > lo && e.seq() <= hi).collect();
    let overlap: Vec<&Event> = theirs.iter().filter(|e| e.seq <= hi).collect();
    let same = ours.len() as u64 == hi - lo
        && overlap.len() == ours.len()
        && ours.iter().zip(&overlap).all(|(o, t)| o.event().is_ok_and(|o| o == **t));
    Ok((!same).then_some(theirs))
}

/// Delivers the log's events after `from` up to `to` (others appended while we were away).
async fn catch_up(
    sh: &Rc<Shared>,
    conn: &mut MultiplexedConnection,
    epoch: &str,
    from: u64,
    to: u64,
) -> Result<(), LogError> {
    if to == from {
        return Ok(());
    }
    let found = sh.log.after(conn, epoch, from, ((to - from) as usize).min(sh.history.max(1))).await?;
    sh.status.borrow_mut().gap_filled += found.len() as u64;
    let batch = found.into_iter().filter(|(e, _)| e.seq <= to).map(|(e, j)| (Arc::new(e), j)).collect();
    let _ = sh.dispatcher.send(Inject(batch)).await;
    Ok(())
}

/// Appends, renumbered in `epoch`, the events of `entries` after `after` (those this
/// instance numbered on its own): they reach every instance through the channel.
async fn append_own(
    sh: &Rc<Shared>,
    conn: &mut MultiplexedConnection,
    entries: &[HistoryEntry],
    after: u64,
    epoch: &str,
) -> Result<(), LogError> {
    let own: Vec<Event> = entries.iter().filter(|e| e.seq() > after).filter_map(|e| e.event().ok()).collect();
    append_events(sh, conn, own, epoch).await
}

async fn append_events(
    sh: &Rc<Shared>,
    conn: &mut MultiplexedConnection,
    events: Vec<Event>,
    epoch: &str,
) -> Result<(), LogError> {
    if events.is_empty() {
        return Ok(());
    }
    tracing::info!(events = events.len(), %epoch, "Events numbered while Redis was away appended to the shared log.");
    for chunk in events.chunks(sh.cfg.batch.max(1)) {
        // In flight until they come back from the channel, like the pump's.
        sh.in_flight.borrow_mut().extend(chunk.iter().cloned());
        let (_, seqs) = sh.log.append(conn, chunk, epoch, 0).await?;
        sh.status.borrow_mut().appended += seqs.len() as u64;
    }
    Ok(())
}
