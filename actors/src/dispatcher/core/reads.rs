//! The `DispatcherCore`'s subscriptions (with replay from the history) and what it
//! answers about itself: history pages, dead letters and statistics. A second `impl`
//! block beside `mod.rs` (which publishes, drains and fans out), reading the same fields.

use super::*;

impl<S: EventSink> DispatcherCore<S> {
    pub fn subscribe(
        &mut self,
        label: String,
        filter: SubscriptionFilter,
        sink: S,
    ) -> Result<SubscriberId, DispatchError> {
        if self.subs.len() >= self.cfg.max_subscribers {
            return Err(DispatchError::TooManySubscribers(self.cfg.max_subscribers));
        }
        Ok(self.subs.add(label, filter, sink))
    }

    /// Registers a subscriber and returns the matching events after `since` (at most
    /// `max_replay`, else `Unrecoverable::TooMany`) in the same step: nothing is missed or
    /// doubled at the seam between the replay and live delivery.
    pub fn subscribe_with_replay(
        &mut self,
        label: String,
        filter: SubscriptionFilter,
        sink: S,
        since: Option<&str>,
        max_replay: usize,
    ) -> Result<Subscription, DispatchError> {
        let replay = match since {
            Some(id) => self.replay(&filter, id, max_replay),
            None => Ok(Vec::new()),
        };
        let id = self.subscribe(label, filter, sink)?;
        Ok(Subscription { id, epoch: self.history.epoch().to_owned(), latest_seq: self.history.latest_seq(), replay })
    }

    /// The matching events after `since` (as `subscribe_with_replay` gives them) for a
    /// subscriber registered before this call: every later event reaches it live.
    pub fn replay_after(&self, filter: &SubscriptionFilter, since: &str, max_replay: usize) -> Replay {
        Replay {
            epoch: self.history.epoch().to_owned(),
            latest_seq: self.history.latest_seq(),
            replay: self.replay(filter, since, max_replay),
        }
    }

    fn replay(&self, filter: &SubscriptionFilter, id: &str, max: usize) -> Result<Vec<HistoryEntry>, Unrecoverable> {
        let seq = self.history.position(id)?;
        let matching = self.history.after(seq)?.filter(|e| entry_matches(filter, e));
        let mut out = Vec::new();
        let mut count = 0usize;
        for e in matching {
            count += 1;
            if out.len() < max {
                out.push(e.clone());
            }
        }
        if count > max {
            return Err(Unrecoverable::TooMany { count, limit: max });
        }
        Ok(out)
    }

    pub fn unsubscribe(&mut self, id: SubscriberId) -> bool {
        self.subs.remove(id)
    }

    pub fn update_subscription(&mut self, id: SubscriberId, filter: SubscriptionFilter) -> Result<(), DispatchError> {
        if self.subs.update(id, filter) {
            Ok(())
        } else {
            Err(DispatchError::UnknownSubscriber(id))
        }
    }

    /// History after the event `since` (the first `limit` matching), or the last `limit`
    /// matching events without `since`.
    pub fn history_page(
        &self,
        since: Option<&str>,
        limit: usize,
        filter: Option<&SubscriptionFilter>,
    ) -> Result<HistoryPage, Unrecoverable> {
        let passes = |e: &&HistoryEntry| filter.is_none_or(|f| entry_matches(f, e));
        let (entries, truncated) = match since {
            Some(id) => {
                let seq = self.history.position(id)?;
                let mut it = self.history.after(seq)?.filter(passes);
                let entries: Vec<_> = it.by_ref().take(limit).cloned().collect();
                (entries, it.next().is_some())
            }
            None => {
                let mut it = self.history.recent().rev().filter(passes);
                let mut entries: Vec<_> = it.by_ref().take(limit).cloned().collect();
                entries.reverse();
                (entries, it.next().is_some())
            }
        };
        Ok(HistoryPage {
            epoch: self.history.epoch().to_owned(),
            latest_seq: self.history.latest_seq(),
            oldest_seq: self.history.oldest_seq(),
            entries,
            truncated,
        })
    }

    pub fn dead_letters(&self, limit: usize) -> Vec<DeadLetter> {
        self.dead.recent(limit)
    }

    /// Dead letters since start (forgotten ones included).
    pub fn dead_letters_total(&self) -> u64 {
        self.dead.total()
    }

    pub fn stats(&self) -> DispatcherStats {
        let mut r = DispatcherStats {
            epoch: self.history.epoch().to_owned(),
            last_seq: self.history.latest_seq(),
            subscribers: self.subs.len(),
            totals: Default::default(),
            by_priority: Default::default(),
            by_type: Default::default(),
            queues: QueueDepths {
                capacity: self.queues.capacity(),
                total: self.queues.len(),
                critical: self.queues.depth(Priority::Critical),
                high: self.queues.depth(Priority::High),
                normal: self.queues.depth(Priority::Normal),
                low: self.queues.depth(Priority::Low),
                express: self.lane.len(),
            },
            latency: Default::default(),
            latency_by_priority: Default::default(),
            latency_histogram: Default::default(),
            history: HistoryStats {
                len: self.history.len(),
                capacity: self.history.capacity(),
                oldest_seq: self.history.oldest_seq(),
            },
            pending_retries: self.subs.pending(),
            dead_letters: self.dead.len(),
            dead_letters_total: self.dead.total(),
        };
        self.stats.report_into(&mut r);
        r
    }

    #[cfg(test)]
    pub(crate) fn backlog_of(&self, id: SubscriberId) -> Option<usize> {
        self.subs.backlog_of(id)
    }
}

fn entry_matches(f: &SubscriptionFilter, e: &HistoryEntry) -> bool {
    f.matches(e.kind(), e.kind_str(), e.project_id())
}
