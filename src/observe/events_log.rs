//! `EventLog`: the events log (`log.dir`/`realtime_events.log`), one line per event the
//! dispatcher hands out: the envelope's JSON exactly as every subscriber receives it.
//! A dispatcher subscriber like the cache, with a roomy mailbox for bursts (a full one
//! makes the dispatcher retry, then dead-letter, as for any slow subscriber).

use actix::prelude::*;
use gns3_central_actors::dispatcher::Deliver;

use crate::observe::logfile::RollingFile;

/// The events log file's name in `log.dir`.
pub const FILE_NAME: &str = "realtime_events.log";

pub struct EventLog {
    file: RollingFile,
    failed: bool,
}

impl EventLog {
    pub fn new(file: RollingFile) -> Self {
        Self { file, failed: false }
    }
}

impl Actor for EventLog {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
    }
}

impl Handler<Deliver> for EventLog {
    type Result = ();
    fn handle(&mut self, msg: Deliver, _: &mut Self::Context) {
        let mut line = Vec::with_capacity(msg.json.len() + 1);
        line.extend_from_slice(&msg.json);
        line.push(b'\n');
        match self.file.append(&line) {
            Ok(()) => self.failed = false,
            Err(e) if !self.failed => {
                // Once per run of failures (a full disk would otherwise log every event).
                self.failed = true;
                tracing::error!(file = %self.file.path().display(), error = %e, "Cannot write the events log.");
            }
            Err(_) => {}
        }
    }
}
