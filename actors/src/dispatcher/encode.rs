//! `Encoder`: the one serialization of each event, on the dispatcher's hot path.
//!
//! Two things make it several times cheaper than `serde_json::to_vec(&event)` per event:
//! - The envelope is written field by field, in the order and format of `Event`'s derived
//!   `Serialize` (a test checks the bytes are identical), with the timestamp formatted
//!   directly (chrono goes through `fmt`) and only the `data` payload and free-text strings
//!   going through serde_json.
//! - Events are written one after another into a 64 KiB chunk and split off as `Bytes`
//!   sharing it: no allocation per event, no slack per event, and the 10,000 events of the
//!   history sit compactly in memory. A chunk is freed when its last event is dropped.

use bytes::{BufMut, Bytes, BytesMut};
use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::events::{Event, Source};

const CHUNK: usize = 64 * 1024;
/// A new chunk is started when less than this is left (an event is usually 300-1500 bytes;
/// a bigger one grows the chunk).
const MIN_FREE: usize = 2048;

pub(crate) struct Encoder {
    buf: BytesMut,
}

/// One serialized envelope, and where its type string sits in it.
pub(crate) struct Encoded {
    pub json: Bytes,
    pub type_at: (u32, u32),
}

impl Encoder {
    pub(crate) fn new() -> Self {
        Self { buf: BytesMut::new() }
    }

    pub(crate) fn encode(&mut self, e: &Event) -> Result<Encoded, serde_json::Error> {
        if self.buf.capacity() - self.buf.len() < MIN_FREE {
            self.buf = BytesMut::with_capacity(CHUNK);
        }
        match write_envelope(&mut self.buf, e) {
            Ok(type_at) => Ok(Encoded { json: self.buf.split().freeze(), type_at }),
            Err(err) => {
                self.buf.clear();
                Err(err)
            }
        }
    }
}

/// One event alone (outside the hot path).
pub(crate) fn to_bytes(e: &Event) -> Result<Encoded, serde_json::Error> {
    let mut buf = BytesMut::with_capacity(512);
    let type_at = write_envelope(&mut buf, e)?;
    Ok(Encoded { json: buf.freeze(), type_at })
}

/// Where the type string's characters are in an envelope serialized elsewhere (`(0, 0)`
/// when not found): the first `"type":"` key, which precedes `data` in every envelope.
pub(crate) fn locate_type(json: &[u8]) -> (u32, u32) {
    const KEY: &[u8] = b"\"type\":\"";
    let Some(at) = json.windows(KEY.len()).position(|w| w == KEY) else { return (0, 0) };
    let start = at + KEY.len();
    match json[start..].iter().position(|&b| b == b'"' || b == b'\\') {
        Some(len) if json[start + len] == b'"' => (start as u32, (start + len) as u32),
        _ => (0, 0),
    }
}

/// Writes the envelope; returns where the type string's characters are (empty when the
/// type needed escaping, which validated types never do).
fn write_envelope(buf: &mut BytesMut, e: &Event) -> Result<(u32, u32), serde_json::Error> {
    buf.put_slice(b"{\"id\":");
    write_str(buf, &e.id)?;
    buf.put_slice(b",\"seq\":");
    write_u64(buf, e.seq);
    buf.put_slice(b",\"epoch\":");
    write_str(buf, &e.epoch)?;
    buf.put_slice(b",\"type\":");
    let start = buf.len() + 1;
    let type_at = match write_str(buf, &e.kind)? {
        true => (u32::try_from(start).unwrap_or(0), u32::try_from(buf.len() - 1).unwrap_or(0)),
        false => (0, 0),
    };
    buf.put_slice(b",\"priority\":\"");
    buf.put_slice(e.priority.as_str().as_bytes());
    buf.put_slice(b"\",\"server\":");
    write_str(buf, &e.server)?;
    buf.put_slice(b",\"project_id\":");
    write_uuid(buf, e.project_id.as_ref());
    buf.put_slice(b",\"node_id\":");
    write_uuid(buf, e.node_id.as_ref());
    buf.put_slice(b",\"timestamp\":");
    if !write_timestamp(buf, &e.timestamp) {
        serde_json::to_writer(buf.writer(), &e.timestamp)?;
    }
    buf.put_slice(b",\"correlation_id\":");
    match &e.correlation_id {
        Some(c) => {
            write_str(buf, c)?;
        }
        None => buf.put_slice(b"null"),
    }
    buf.put_slice(b",\"source\":\"");
    buf.put_slice(source_str(e.source).as_bytes());
    buf.put_slice(b"\",\"data\":");
    serde_json::to_writer(buf.writer(), &e.data)?;
    buf.put_slice(b"}");
    Ok(type_at)
}

/// As `Source`'s serde names (`rename_all = "lowercase"`).
fn source_str(s: Source) -> &'static str {
    match s {
        Source::Gns3 => "gns3",
        Source::Resync => "resync",
        Source::Central => "central",
        Source::Module => "module",
    }
}

/// A JSON string; strings needing no escape (nearly all) are copied as they are (`true`).
fn write_str(buf: &mut BytesMut, s: &str) -> Result<bool, serde_json::Error> {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        buf.reserve(s.len() + 2);
        buf.put_u8(b'"');
        buf.put_slice(s.as_bytes());
        buf.put_u8(b'"');
        Ok(true)
    } else {
        serde_json::to_writer(buf.writer(), s)?;
        Ok(false)
    }
}

fn write_u64(buf: &mut BytesMut, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.put_slice(&tmp[i..]);
}

fn write_uuid(buf: &mut BytesMut, id: Option<&uuid::Uuid>) {
    match id {
        Some(u) => {
            let mut tmp = [0u8; uuid::fmt::Hyphenated::LENGTH];
            buf.put_u8(b'"');
            buf.put_slice(u.hyphenated().encode_lower(&mut tmp).as_bytes());
            buf.put_u8(b'"');
        }
        None => buf.put_slice(b"null"),
    }
}

fn two(buf: &mut [u8], at: usize, v: u32) {
    buf[at] = b'0' + (v / 10 % 10) as u8;
    buf[at + 1] = b'0' + (v % 10) as u8;
}

/// chrono's serde format (RFC 3339, `SecondsFormat::AutoSi`, `Z`) for years 0-9999;
/// `false` (nothing written) otherwise.
fn write_timestamp(buf: &mut BytesMut, t: &DateTime<Utc>) -> bool {
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return false;
    }
    let (mut sec, mut nano) = (t.second(), t.nanosecond());
    if nano >= 1_000_000_000 {
        // A leap second, shown as second 60.
        sec += 1;
        nano -= 1_000_000_000;
    }
    // "YYYY-MM-DDTHH:MM:SS" + ".fffffffff" + "Z" with quotes.
    let mut out = *b"\"0000-00-00T00:00:00.000000000Z\"";
    let year = year as u32;
    two(&mut out, 1, year / 100);
    two(&mut out, 3, year % 100);
    two(&mut out, 6, t.month());
    two(&mut out, 9, t.day());
    two(&mut out, 12, t.hour());
    two(&mut out, 15, t.minute());
    two(&mut out, 18, sec);
    let digits = if nano == 0 {
        0
    } else if nano % 1_000_000 == 0 {
        3
    } else if nano % 1_000 == 0 {
        6
    } else {
        9
    };
    let mut frac = nano / 10u32.pow(9 - digits);
    for i in (0..digits as usize).rev() {
        out[21 + i] = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    let end = if digits == 0 { 20 } else { 21 + digits as usize };
    buf.put_slice(&out[..end]);
    buf.put_slice(b"Z\"");
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventKind, NewEvent, Priority};
    use chrono::TimeZone;
    use uuid::Uuid;

    fn event(ts: DateTime<Utc>, server: &str, correlation: Option<&str>, data: serde_json::Value) -> Event {
        let mut new = NewEvent::new(EventKind::NodeStarted, server, Source::Resync, data)
            .project(Some(Uuid::new_v4()))
            .node(None);
        new.timestamp = ts;
        new.correlation_id = correlation.map(str::to_owned);
        Event::stamp(new, "7f3a9c01", 18_446_744_073_709_551_615, Priority::Critical)
    }

    #[test]
    fn writes_exactly_what_serde_writes() {
        let base = Utc.with_ymd_and_hms(2026, 11, 24, 21, 22, 11).unwrap();
        let stamps = [
            base,
            base + chrono::Duration::milliseconds(123),
            base + chrono::Duration::microseconds(123_400),
            base + chrono::Duration::nanoseconds(123_456_789),
            base + chrono::Duration::nanoseconds(5),
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(12345, 1, 1, 0, 0, 0).unwrap(),
            Utc::now(),
        ];
        let data = serde_json::json!({"name": "R\"1\n", "nested": {"a": [1, 2.5, null, true]}, "é": "ü"});
        for ts in stamps {
            for (server, corr) in [("default", None), ("lab \"east\"\\\u{1}", Some("req-1")), ("", Some("tab\t"))] {
                let e = event(ts, server, corr, data.clone());
                let ours = to_bytes(&e).unwrap().json;
                let theirs = serde_json::to_vec(&e).unwrap();
                assert_eq!(std::str::from_utf8(&ours).unwrap(), std::str::from_utf8(&theirs).unwrap());
            }
        }
        for source in [Source::Gns3, Source::Resync, Source::Central, Source::Module] {
            let mut e = event(base, "s", None, serde_json::Value::Null);
            e.source = source;
            assert_eq!(to_bytes(&e).unwrap().json, serde_json::to_vec(&e).unwrap());
        }
    }

    #[test]
    fn leap_seconds_are_written_as_chrono_does() {
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        let e = event(leap, "s", None, serde_json::Value::Null);
        assert_eq!(to_bytes(&e).unwrap().json, serde_json::to_vec(&e).unwrap());
    }

    #[test]
    fn events_share_chunks_and_stay_intact() {
        let mut enc = Encoder::new();
        let base = Utc::now();
        let mut out = Vec::new();
        for i in 0..500 {
            let big = "x".repeat(if i == 250 { 100_000 } else { i });
            let e = event(base, "s", None, serde_json::json!({ "pad": big }));
            out.push((enc.encode(&e).unwrap().json, serde_json::to_vec(&e).unwrap()));
        }
        for (ours, theirs) in &out {
            assert_eq!(ours, theirs);
        }
        // Neighbours written into the same chunk are adjacent in memory.
        let (a, b) = (&out[1].0, &out[2].0);
        assert_eq!(a.as_ptr() as usize + a.len(), b.as_ptr() as usize);
    }
}
