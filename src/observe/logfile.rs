//! `RollingFile`: an append-only log file in `log.dir` that rotates by day (the file of
//! the previous day is renamed `NAME.YYYY-MM-DD`) or by size (`NAME.1` is the newest
//! older part, `NAME.2` the one before...), keeping at most `log.max_files` old parts.
//! The service log (`gns3_central_service.log`) gets the tracing output through
//! `MakeWriter`; the events log (`realtime_events.log`) one JSON line per dispatched
//! event from `EventLog` (`events_log.rs`).
//!
//! A std `Mutex` around the file: a write is one `write_all` of a whole line, held for
//! no longer than that (and a rename at rotation), never across an await. A failed
//! write is dropped rather than reported through the log it failed to write.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, Utc};

/// How a log file rotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// A new file every day (UTC).
    Daily,
    /// A new file when this many bytes were written.
    Size(u64),
}

struct Inner {
    file: File,
    written: u64,
    day: NaiveDate,
}

/// A rotating file; cheap to clone (shared).
#[derive(Clone)]
pub struct RollingFile {
    path: PathBuf,
    rotation: Rotation,
    keep: usize,
    inner: Arc<Mutex<Inner>>,
}

impl RollingFile {
    /// Opens (creating the directory and the file) `dir/name` for appending.
    pub fn open(dir: &Path, name: &str, rotation: Rotation, keep: usize) -> io::Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("log.dir {}: {e}", dir.display())))?;
        let path = dir.join(name);
        let file = open_append(&path)?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        let inner = Inner { file, written, day: Utc::now().date_naive() };
        Ok(Self { path, rotation, keep, inner: Arc::new(Mutex::new(inner)) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one whole line (or lines) atomically with respect to other writers.
    pub fn append(&self, buf: &[u8]) -> io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let today = Utc::now().date_naive();
        let due = match self.rotation {
            Rotation::Daily => today != inner.day,
            Rotation::Size(max) => inner.written > 0 && inner.written + buf.len() as u64 > max,
        };
        if due {
            self.rotate(&mut inner, today)?;
        }
        inner.file.write_all(buf)?;
        inner.written += buf.len() as u64;
        Ok(())
    }

    fn rotate(&self, inner: &mut Inner, today: NaiveDate) -> io::Result<()> {
        inner.file.flush()?;
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match self.rotation {
            Rotation::Daily => {
                let old = self.path.with_file_name(format!("{name}.{}", inner.day.format("%Y-%m-%d")));
                std::fs::rename(&self.path, old)?;
                self.prune_daily(&name)?;
            }
            Rotation::Size(_) => {
                // NAME.(keep) goes, NAME.i becomes NAME.(i+1), NAME becomes NAME.1.
                let part = |i: usize| self.path.with_file_name(format!("{name}.{i}"));
                let _ = std::fs::remove_file(part(self.keep.max(1)));
                for i in (1..self.keep.max(1)).rev() {
                    let _ = std::fs::rename(part(i), part(i + 1));
                }
                std::fs::rename(&self.path, part(1))?;
                if self.keep == 0 {
                    let _ = std::fs::remove_file(part(1));
                }
            }
        }
        inner.file = open_append(&self.path)?;
        inner.written = 0;
        inner.day = today;
        Ok(())
    }

    /// Keeps the newest `keep` dated parts.
    fn prune_daily(&self, name: &str) -> io::Result<()> {
        let Some(dir) = self.path.parent() else { return Ok(()) };
        let prefix = format!("{name}.");
        let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&prefix)))
            .collect();
        parts.sort();
        let excess = parts.len().saturating_sub(self.keep);
        for p in parts.into_iter().take(excess) {
            let _ = std::fs::remove_file(p);
        }
        Ok(())
    }

    #[cfg(test)]
    fn set_day(&self, day: NaiveDate) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).day = day;
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("log file {}: {e}", path.display())))
}

/// One tracing event's output, written to the file as one piece when dropped.
pub struct LineWriter {
    file: RollingFile,
    buf: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.file.append(&self.buf);
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RollingFile {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> Self::Writer {
        LineWriter { file: self.clone(), buf: Vec::with_capacity(256) }
    }
}

impl crate::config::LogSettings {
    /// How the log files rotate.
    pub fn rotation(&self) -> Rotation {
        match self.rotation.as_str() {
            "size" => Rotation::Size(self.max_size_mb.saturating_mul(1024 * 1024)),
            _ => Rotation::Daily,
        }
    }

    /// Opens `name` in `log.dir`, when a directory is configured.
    pub fn open_file(&self, name: &str) -> std::io::Result<Option<RollingFile>> {
        if self.dir.trim().is_empty() {
            return Ok(None);
        }
        RollingFile::open(std::path::Path::new(&self.dir), name, self.rotation(), self.max_files).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn rotates_by_size_keeping_the_newest_parts() {
        let dir = tempfile::tempdir().unwrap();
        let f = RollingFile::open(dir.path(), "a.log", Rotation::Size(10), 2).unwrap();
        for line in ["first 1\n", "second\n", "third\n", "fourth\n"] {
            f.append(line.as_bytes()).unwrap();
        }
        assert_eq!(names(dir.path()), vec!["a.log", "a.log.1", "a.log.2"]);
        assert_eq!(std::fs::read_to_string(dir.path().join("a.log")).unwrap(), "fourth\n");
        assert_eq!(std::fs::read_to_string(dir.path().join("a.log.1")).unwrap(), "third\n");
        assert_eq!(std::fs::read_to_string(dir.path().join("a.log.2")).unwrap(), "second\n");
    }

    #[test]
    fn rotates_daily_under_the_previous_date() {
        let dir = tempfile::tempdir().unwrap();
        let f = RollingFile::open(dir.path(), "e.log", Rotation::Daily, 1).unwrap();
        f.append(b"today\n").unwrap();
        f.set_day(NaiveDate::from_ymd_opt(2020, 1, 1).unwrap());
        f.append(b"again\n").unwrap();
        f.set_day(NaiveDate::from_ymd_opt(2020, 1, 2).unwrap());
        f.append(b"third\n").unwrap();
        // Only one old part is kept.
        assert_eq!(names(dir.path()), vec!["e.log", "e.log.2020-01-02"]);
        assert_eq!(std::fs::read_to_string(dir.path().join("e.log")).unwrap(), "third\n");
    }
}
