//! Resuming from a position this instance has not reached yet (docs/events.md#resuming-on-another-instance).
//!
//! In a cluster every instance gets every event from the shared log, but not at the same
//! moment: a client that moves from instance b to instance a (a failover, a load balancer)
//! may hold an id `E-s` b has delivered and a has not received yet. Answering `ahead` at
//! once would make it rebuild from a fresh topology although nothing is lost. So a read
//! given `wait_ahead` (the caller's bound: the service passes twice
//! `cluster.redis_timeout_ms` when clustered, zero otherwise) whose `since` names the
//! current epoch and a seq beyond the latest one is parked here until the history reaches
//! that seq (or the epoch changes), then answered as if it had just arrived; after the
//! bound it is answered as it is (`ahead`). A parked read is one entry (an epoch, a seq,
//! a wake-up): a `since` far ahead costs the bound and nothing per seq.

use actix::prelude::*;
use std::time::Duration;
use tokio::sync::oneshot;

use super::PriorityDispatcher;

/// The reads waiting for the history to reach a seq.
#[derive(Default)]
pub(super) struct AheadWaiters {
    list: Vec<Waiter>,
}

struct Waiter {
    epoch: String,
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl AheadWaiters {
    /// How many reads may wait at once; more are answered at once (`ahead`).
    pub const MAX: usize = 10_000;

    /// A wake-up for when the history of `epoch` reaches `seq` (or the epoch changes);
    /// `None` when `MAX` reads already wait.
    pub fn park(&mut self, epoch: &str, seq: u64) -> Option<oneshot::Receiver<()>> {
        // Reads that gave up (their bound passed) leave here.
        self.list.retain(|w| !w.wake.is_closed());
        if self.list.len() >= Self::MAX {
            return None;
        }
        let (wake, rx) = oneshot::channel();
        self.list.push(Waiter { epoch: epoch.to_owned(), seq, wake });
        Some(rx)
    }

    /// Wakes the reads the history (`epoch`, `latest`) has reached.
    pub fn wake(&mut self, epoch: &str, latest: u64) {
        if self.list.is_empty() {
            return;
        }
        let (ready, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.list)
            .into_iter()
            .filter(|w| !w.wake.is_closed())
            .partition(|w| w.epoch != epoch || latest >= w.seq);
        self.list = keep;
        for w in ready {
            let _ = w.wake.send(());
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.list.len()
    }
}

/// Resolves when `rx` fires or after `bound`, whichever is first.
pub(super) async fn reached_or_bound(rx: oneshot::Receiver<()>, bound: Duration) {
    let _ = tokio::time::timeout(bound, rx).await;
}

/// The seq `since` names when it is in `epoch` and beyond `latest` (the reads worth waiting
/// for); `None` for any other id, malformed ones included (answered at once).
pub(super) fn ahead_seq(since: &str, epoch: &str, latest: u64) -> Option<u64> {
    let (e, seq) = crate::events::Event::parse_id(since)?;
    (e == epoch && seq > latest).then_some(seq)
}

impl PriorityDispatcher {
    /// Runs `answer` now, or, when `since` is ahead of the history in its epoch and
    /// `wait` is not zero, once the history has reached it or `wait` has passed.
    pub(super) fn when_reached<T: 'static>(
        &mut self,
        since: Option<&str>,
        wait: Duration,
        answer: impl FnOnce(&mut Self) -> T + 'static,
    ) -> ActorResponse<Self, T> {
        let target =
            since.filter(|_| !wait.is_zero()).and_then(|id| ahead_seq(id, self.core.epoch(), self.core.latest_seq()));
        let Some(rx) = target.and_then(|seq| self.ahead.park(self.core.epoch(), seq)) else {
            return ActorResponse::reply(answer(self));
        };
        tracing::debug!(since, wait_ms = wait.as_millis() as u64, "Resume ahead of the history: waiting for it.");
        ActorResponse::r#async(reached_or_bound(rx, wait).into_actor(self).map(move |_, act, _| answer(act)))
    }

    /// Wakes the reads waiting for the history (after anything that may extend it).
    pub(super) fn wake_ahead(&mut self) {
        self.ahead.wake(self.core.epoch(), self.core.latest_seq());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_only_reached_reads() {
        let mut w = AheadWaiters::default();
        let mut five = w.park("ep", 5).unwrap();
        let mut far = w.park("ep", 1_000_000_000_000).unwrap();
        w.wake("ep", 4);
        assert!(five.try_recv().is_err());
        w.wake("ep", 5);
        assert!(five.try_recv().is_ok());
        assert!(far.try_recv().is_err());
        assert_eq!(w.len(), 1);
        w.wake("other", 1);
        assert!(far.try_recv().is_ok(), "a new epoch wakes every read");
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn ahead_only_in_the_same_epoch() {
        assert_eq!(ahead_seq("ep-7", "ep", 5), Some(7));
        assert_eq!(ahead_seq("ep-5", "ep", 5), None);
        assert_eq!(ahead_seq("old-7", "ep", 5), None);
        assert_eq!(ahead_seq("garbage", "ep", 5), None);
    }
}
