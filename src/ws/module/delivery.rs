//! What a module session tells its proxy about the bus messages it was handed
//! (docs/modules.md#status). Each is a tagged frame (`Frame::tag`, its sequence number);
//! once the HTTP writer has taken all its bytes it is written to the module's socket, and
//! the session confirms it (`Delivered`, after each pump and every `PUMP_RETRY` while some
//! wait). When the session ends, the frames already handed to the socket may still go out
//! (a 4008 or 1001 close is sent after them), so the last word (`Detach`) waits until they
//! are taken, the connection is gone, or `client_timeout_ms` passes (or the module has
//! connected again): then what was not taken is discarded, never written, and the proxy
//! puts those messages, with the ones still buffered or in the session's mailbox, back at
//! the front of the offline queue.

use actix::prelude::*;
use actix_web_actors::ws;
use gns3_central_actors::modules::{Delivered, Detach};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::session::ModuleSession;
use crate::ws::writer::{confirm, PUMP_RETRY};

impl ModuleSession {
    /// Confirms what the socket took; looks again later while tagged frames wait.
    pub(super) fn confirm_written(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if let Some(upto) = self.core.out.confirmed() {
            self.slot.addr.do_send(Delivered { session: self.core.id, upto, failed: false });
        }
        if self.core.out.unconfirmed() && !self.confirm_scheduled {
            self.confirm_scheduled = true;
            ctx.run_later(PUMP_RETRY, |act, ctx| {
                act.confirm_scheduled = false;
                act.confirm_written(ctx);
            });
        }
    }

    /// For `stopping`: tells the proxy, once it is known, which of its messages went out.
    pub(super) fn settle(&mut self) {
        let mut last = self.core.out.confirmed();
        let mut tags = self.core.out.take_tags();
        let meter = self.core.out.meter().clone();
        let (proxy, session, stats) = (self.slot.addr.clone(), self.core.id, self.slot.stats.clone());
        let connections = stats.connections.load(Relaxed);
        let deadline = Instant::now() + Duration::from_millis(self.core.cfg.client_timeout_ms);
        actix_rt::spawn(async move {
            loop {
                last = confirm(&mut tags, meter.flushed()).or(last);
                if tags.is_empty() || meter.gone() {
                    break;
                }
                if Instant::now() >= deadline || stats.connections.load(Relaxed) != connections {
                    // Nothing more is taken from now on: what waits is never written.
                    meter.discard();
                    break;
                }
                actix_rt::time::sleep(PUMP_RETRY).await;
            }
            proxy.do_send(Detach { session, delivered_upto: last });
        });
    }
}
