//! The audit spool: where audit records wait while Redis cannot take them, so none is
//! dropped by an outage. A JSON-lines file `<audit.dir>/audit-spool.jsonl` (or memory
//! only, with no `audit.dir`: a warning at start says the spool is lost at exit), oldest
//! first, read back at start so records spooled before a restart are still written.
//!
//! Bounded: at most `audit.spool_max_mb` of JSON. When full, a new record is refused
//! (logged with the whole record and counted in `gns3central_audit_write_failures_total`)
//! and the spooled ones are kept: the trail keeps its order and its oldest part.
//!
//! Records are written to Redis from the front, in order (`RedisAudit::flush`); the file
//! is rewritten with what is left after each flush (emptied when all went). A crash
//! between a Redis write and that rewrite writes the record again at the next start: at
//! least once, never lost.
//!
//! Spooled records get ids `s<n>` (numbered locally, never reused within a run), so a
//! query shows them, newest first, ahead of what Redis holds and can page through them.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use super::{AuditQuery, AuditRecord};

pub const FILE_NAME: &str = "audit-spool.jsonl";

pub struct Spool {
    path: Option<PathBuf>,
    /// Oldest first, each with its JSON line's length (for the bound).
    records: VecDeque<(AuditRecord, usize)>,
    bytes: usize,
    max_bytes: usize,
    next_id: u64,
}

impl Spool {
    /// A spool in `dir` (created if missing; what it holds is read back), or in memory
    /// with `dir` empty.
    pub fn open(dir: &str, max_bytes: usize) -> std::io::Result<Spool> {
        let mut spool = Spool { path: None, records: VecDeque::new(), bytes: 0, max_bytes, next_id: 1 };
        if dir.trim().is_empty() {
            return Ok(spool);
        }
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| std::io::Error::new(e.kind(), format!("audit.dir {}: {e}", dir.display())))?;
        let path = dir.join(FILE_NAME);
        if let Ok(f) = std::fs::File::open(&path) {
            for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
                let line = line?;
                match serde_json::from_str::<AuditRecord>(&line) {
                    Ok(mut r) => {
                        r.id = format!("s{}", spool.next_id);
                        spool.next_id += 1;
                        spool.bytes += line.len() + 1;
                        spool.records.push_back((r, line.len() + 1));
                    }
                    Err(e) => tracing::warn!(file = %path.display(), line = n + 1, error = %e,
                        "Unreadable spooled audit record skipped."),
                }
            }
        }
        if !spool.records.is_empty() {
            tracing::info!(records = spool.records.len(), file = %path.display(),
                "Audit records spooled before the restart will be written to Redis.");
        }
        spool.path = Some(path);
        Ok(spool)
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_persistent(&self) -> bool {
        self.path.is_some()
    }

    /// Keeps `r` behind the others; `Err` when the spool is full or its file cannot be written.
    pub fn push(&mut self, mut r: AuditRecord) -> Result<(), String> {
        r.id = String::new();
        let mut line = serde_json::to_vec(&r).map_err(|e| e.to_string())?;
        line.push(b'\n');
        if self.bytes + line.len() > self.max_bytes {
            return Err(format!("the audit spool is full ({} records, audit.spool_max_mb)", self.records.len()));
        }
        if let Some(path) = &self.path {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            f.write_all(&line).and_then(|()| f.flush()).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        r.id = format!("s{}", self.next_id);
        self.next_id += 1;
        self.bytes += line.len();
        self.records.push_back((r, line.len()));
        Ok(())
    }

    /// The oldest record (the next to write to Redis).
    pub fn front(&self) -> Option<&AuditRecord> {
        self.get(0)
    }

    /// The `i`-th oldest record.
    pub fn get(&self, i: usize) -> Option<&AuditRecord> {
        self.records.get(i).map(|(r, _)| r)
    }

    /// Forgets the oldest `n` records (written to Redis) and rewrites the file with the rest.
    pub fn pop_written(&mut self, n: usize) {
        for _ in 0..n.min(self.records.len()) {
            if let Some((_, len)) = self.records.pop_front() {
                self.bytes -= len;
            }
        }
        if n > 0 {
            if let Err(e) = self.rewrite() {
                tracing::error!(error = %e, "The audit spool file could not be rewritten; records may be written twice.");
            }
        }
    }

    fn rewrite(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        if self.records.is_empty() {
            return std::fs::File::create(path).map(drop);
        }
        let tmp = path.with_extension("jsonl.tmp");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        for (r, _) in &self.records {
            let mut stored = r.clone();
            stored.id = String::new();
            serde_json::to_writer(&mut f, &stored)?;
            f.write_all(b"\n")?;
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    }

    /// Whether `before` is a spool cursor (`s<n>`); its number.
    pub fn cursor(before: &str) -> Option<u64> {
        before.strip_prefix('s').filter(|n| !n.is_empty()).and_then(|n| n.parse().ok())
    }

    /// The matching spooled records, newest first, older than cursor `before` (a spool
    /// number), at most `limit`; and whether more match further back in the spool.
    pub fn query(&self, q: &AuditQuery, before: Option<u64>, limit: usize) -> (Vec<AuditRecord>, bool) {
        let num = |r: &AuditRecord| Self::cursor(&r.id).unwrap_or(0);
        let mut iter = self.records.iter().rev().map(|(r, _)| r).filter(|r| before.is_none_or(|b| num(r) < b));
        let mut out = Vec::new();
        for r in iter.by_ref() {
            if q.matches(r) {
                out.push(r.clone());
                if out.len() == limit {
                    break;
                }
            }
        }
        let more = out.len() == limit && iter.any(|r| q.matches(r));
        (out, more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(n: usize) -> AuditRecord {
        AuditRecord::new("t", "admin", "rest", format!("node.a{n}"))
    }

    #[test]
    fn records_survive_a_reopen_in_order_and_the_bound_refuses_new_ones() {
        let dir = std::env::temp_dir().join(format!("g3c-spool-{}", rand::random::<u32>()));
        let d = dir.to_string_lossy().into_owned();
        let mut s = Spool::open(&d, 4096).unwrap();
        for n in 0..3 {
            s.push(rec(n)).unwrap();
        }
        let mut s = Spool::open(&d, 4096).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s.front().unwrap().action, "node.a0");
        s.pop_written(1);
        let s2 = Spool::open(&d, 4096).unwrap();
        let actions: Vec<_> = s2.records.iter().map(|(r, _)| r.action.clone()).collect();
        assert_eq!(actions, ["node.a1", "node.a2"]);
        let mut small = Spool::open("", 300).unwrap();
        assert!(small.push(rec(1)).is_ok());
        assert!(small.push(rec(2)).unwrap_err().contains("full"));
        assert_eq!(small.len(), 1, "the spooled record is kept, the new one refused");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn queries_page_newest_first_with_spool_cursors() {
        let mut s = Spool::open("", 1 << 20).unwrap();
        for n in 0..5 {
            s.push(rec(n)).unwrap();
        }
        let q = AuditQuery::default();
        let (page, more) = s.query(&q, None, 2);
        assert_eq!(page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["s5", "s4"]);
        assert!(more);
        let (page, more) = s.query(&q, Spool::cursor("s4"), 10);
        assert_eq!(page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["s3", "s2", "s1"]);
        assert!(!more);
        assert_eq!(Spool::cursor("1700-0"), None);
    }
}
