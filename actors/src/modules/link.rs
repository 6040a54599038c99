//! `Link`: one connection of a module as its proxy sees it (a WebSocket session or an
//! in-process inbox): where to hand messages, and the messages handed to it that it has
//! not yet confirmed (`Delivered`), oldest first. They are still the proxy's: when the
//! connection goes (`Detach`), what it did not confirm goes back to the offline queue.
//! A plain struct, tested without actix.

use actix::Recipient;
use std::collections::VecDeque;
use std::sync::Arc;
use uuid::Uuid;

use super::envelope::BusMessage;
use super::messages::ToModule;

pub(crate) struct Link {
    pub session: Uuid,
    pub to: Recipient<ToModule>,
    in_flight: VecDeque<(u64, Arc<BusMessage>)>,
}

impl Link {
    pub fn new(session: Uuid, to: Recipient<ToModule>) -> Self {
        Self { session, to, in_flight: VecDeque::new() }
    }

    pub fn handed(&mut self, seq: u64, msg: Arc<BusMessage>) {
        self.in_flight.push_back((seq, msg));
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Removes and returns, oldest first, the messages up to `upto`.
    pub fn confirm(&mut self, upto: u64) -> Vec<(u64, Arc<BusMessage>)> {
        let n = self.in_flight.iter().take_while(|(s, _)| *s <= upto).count();
        self.in_flight.drain(..n).collect()
    }

    /// What it was handed and did not confirm, oldest first.
    pub fn unconfirmed(self) -> Vec<Arc<BusMessage>> {
        self.in_flight.into_iter().map(|(_, m)| m).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::prelude::*;
    use serde_json::json;

    struct Sink;
    impl Actor for Sink {
        type Context = Context<Self>;
    }
    impl Handler<ToModule> for Sink {
        type Result = ();
        fn handle(&mut self, _: ToModule, _: &mut Self::Context) {}
    }

    #[actix_rt::test]
    async fn confirms_in_order_and_gives_back_the_rest() {
        let mut l = Link::new(Uuid::new_v4(), Sink.start().recipient());
        for seq in 3..8 {
            l.handed(seq, Arc::new(BusMessage::new("a", "b", "t.x", json!(seq))));
        }
        assert!(l.confirm(2).is_empty());
        assert_eq!(l.confirm(4).iter().map(|(s, _)| *s).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(l.in_flight(), 3);
        let rest: Vec<_> = l.unconfirmed().iter().map(|m| m.payload.clone()).collect();
        assert_eq!(rest, [json!(5), json!(6), json!(7)]);
    }
}
