//! Runtime configuration: the effective settings of a running service (`Live`), what of
//! them can change without a restart, and how a change is checked and carried out — for
//! `PATCH /api/v2/config` (a JSON merge patch) and for `SIGHUP` (the configuration file
//! read again). Live keys: `gns3.servers.<s>.timeout`, `gns3.monitor_interval`,
//! `cache.ttl`, `log.level`, `events.priorities`. A change is planned on a copy of the
//! settings and validated as a whole first, so a bad value changes nothing; keys that
//! need a restart are refused by PATCH (`restart_required`) and reported by SIGHUP.
//!
//! A tokio `Mutex` holds the settings: one change at a time, from planning to the last
//! message sent, so two concurrent PATCHes cannot interleave.

use gns3_central_actors::events::Priority;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use super::settings::Settings;

/// What carries the live changes out: the running service (`crate::state::AppState` sends
/// each to the actor that owns it).
pub trait ApplyChanges {
    fn apply(&self, changes: &[Change]) -> impl Future<Output = ()>;
}

/// Where `SIGHUP` reads the configuration again, and the `serve` flags that still win.
#[derive(Debug, Clone, Default)]
pub struct ReloadSource {
    pub file: Option<PathBuf>,
    pub bind: Option<String>,
    pub debug: bool,
    pub log_json: bool,
    /// `--test-mode`: the servers are the stand-in's, not the file's.
    pub test_mode: bool,
}

/// One live change.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Timeout { server: String, secs: f64 },
    MonitorInterval(f64),
    CacheTtl(f64),
    LogLevel(String),
    Priorities(BTreeMap<String, Priority>),
}

impl Change {
    pub fn key(&self) -> String {
        match self {
            Change::Timeout { server, .. } => format!("gns3.servers.{server}.timeout"),
            Change::MonitorInterval(_) => "gns3.monitor_interval".into(),
            Change::CacheTtl(_) => "cache.ttl".into(),
            Change::LogLevel(_) => "log.level".into(),
            Change::Priorities(_) => "events.priorities".into(),
        }
    }
}

/// Why a patch was refused (nothing changed).
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    UnknownKeys(Vec<String>),
    RestartRequired(Vec<String>),
    Invalid(String),
}

pub struct Live {
    current: tokio::sync::Mutex<Settings>,
    pub reload: Option<ReloadSource>,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
}

/// The settings as JSON with secrets masked (`***`), as `check-config` prints them.
pub fn masked(s: &Settings) -> Value {
    serde_json::to_value(s).unwrap_or_default()
}

impl Live {
    pub fn new(settings: Settings, reload: Option<ReloadSource>) -> Self {
        Self {
            current: tokio::sync::Mutex::new(settings),
            reload,
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
        }
    }

    pub async fn masked(&self) -> Value {
        masked(&*self.current.lock().await)
    }

    /// Plans `patch` (a JSON merge patch) and carries it out; the changes made.
    pub async fn patch(&self, state: &impl ApplyChanges, patch: &Value) -> Result<Vec<Change>, Refusal> {
        let mut current = self.current.lock().await;
        let next = plan_patch(&current, patch)?;
        let (changes, _) = diff(&current, &next);
        state.apply(&changes).await;
        *current = next;
        Ok(changes)
    }

    /// `SIGHUP`: reads the file again and carries out its live changes; a bad file changes
    /// nothing. Settings that need a restart are logged, not applied.
    pub async fn reload(&self, state: &impl ApplyChanges) {
        let Some(src) = &self.reload else { return };
        let mut current = self.current.lock().await;
        let mut next = match Settings::load(src.file.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "Configuration reload failed; nothing changed.");
                return;
            }
        };
        if let Some(b) = &src.bind {
            next.http.bind = b.clone();
        }
        if src.debug {
            next.log.level = "debug".into();
        }
        if src.log_json {
            next.log.format = "json".into();
        }
        if src.test_mode {
            next.gns3.servers = current.gns3.servers.clone();
        }
        let (changes, restart) = diff(&current, &next);
        state.apply(&changes).await;
        let mut kept = next;
        // What needs a restart keeps its running value, so GET /api/v2/config stays true.
        revert_restart_only(&current, &mut kept);
        *current = kept;
        self.reloads_ok.fetch_add(1, Ordering::Relaxed);
        let applied: Vec<String> = changes.iter().map(Change::key).collect();
        tracing::info!(applied = ?applied, "Configuration reloaded.");
        if !restart.is_empty() {
            tracing::warn!(keys = ?restart, "Configuration reload: these settings changed but need a restart.");
        }
    }
}

/// The live changes from `current` to `next`, and the other keys that differ.
pub fn diff(current: &Settings, next: &Settings) -> (Vec<Change>, Vec<String>) {
    let mut changes = Vec::new();
    for (name, s) in &next.gns3.servers {
        if current.gns3.servers.get(name).is_some_and(|c| c.timeout != s.timeout) {
            changes.push(Change::Timeout { server: name.clone(), secs: s.timeout });
        }
    }
    if current.gns3.monitor_interval != next.gns3.monitor_interval {
        changes.push(Change::MonitorInterval(next.gns3.monitor_interval));
    }
    if current.cache.ttl != next.cache.ttl {
        changes.push(Change::CacheTtl(next.cache.ttl));
    }
    if current.log.level != next.log.level {
        changes.push(Change::LogLevel(next.log.level.clone()));
    }
    if current.events.priorities != next.events.priorities {
        changes.push(Change::Priorities(next.events.priorities.clone()));
    }
    let mut rest = next.clone();
    revert_live(current, &mut rest);
    let mut restart = Vec::new();
    if rest != *current {
        leaf_diff(&masked(current), &masked(&rest), "", &mut restart);
        if restart.is_empty() {
            restart.push("(a secret setting)".into());
        }
    }
    (changes, restart)
}

/// `next` with the live keys of `current` (what is left differs only in restart keys).
fn revert_live(current: &Settings, next: &mut Settings) {
    for (name, s) in next.gns3.servers.iter_mut() {
        if let Some(c) = current.gns3.servers.get(name) {
            s.timeout = c.timeout;
        }
    }
    next.gns3.monitor_interval = current.gns3.monitor_interval;
    next.cache.ttl = current.cache.ttl;
    next.log.level = current.log.level.clone();
    next.events.priorities = current.events.priorities.clone();
}

/// `next` with the restart-only keys of `current` (only the live keys changed).
fn revert_restart_only(current: &Settings, next: &mut Settings) {
    let mut kept = current.clone();
    for (name, s) in kept.gns3.servers.iter_mut() {
        if let Some(n) = next.gns3.servers.get(name) {
            s.timeout = n.timeout;
        }
    }
    kept.gns3.monitor_interval = next.gns3.monitor_interval;
    kept.cache.ttl = next.cache.ttl;
    kept.log.level = next.log.level.clone();
    kept.events.priorities = next.events.priorities.clone();
    *next = kept;
}

fn leaf_diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let sub = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                leaf_diff(x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null), &sub, out);
            }
        }
        _ if a != b => out.push(path.to_owned()),
        _ => {}
    }
}

/// The settings `patch` leads to, checked as a whole; nothing is changed here.
pub fn plan_patch(current: &Settings, patch: &Value) -> Result<Settings, Refusal> {
    let Value::Object(top) = patch else {
        return Err(Refusal::Invalid("the body must be a JSON object (a merge patch of the configuration)".into()));
    };
    let mut leaves = Vec::new();
    flatten(top, "", &mut leaves);
    let now = masked(current);
    let mut next = current.clone();
    let (mut unknown, mut restart) = (Vec::new(), Vec::new());
    for (path, value) in leaves {
        // RFC 7386: an empty object merged into an object (`{"cache":{}}`,
        // `{"events":{"priorities":{}}}`) changes nothing; into a value it replaces it.
        let empty = value.as_object().is_some_and(|m| m.is_empty());
        if empty && pointer(&now, &path).is_some_and(Value::is_object) {
            continue;
        }
        if set_live(&mut next, &path, value)? {
            continue;
        }
        match pointer(&now, &path) {
            Some(v) if v == value => {}
            Some(_) => restart.push(path),
            None => unknown.push(path),
        }
    }
    if !unknown.is_empty() {
        return Err(Refusal::UnknownKeys(unknown));
    }
    if !restart.is_empty() {
        return Err(Refusal::RestartRequired(restart));
    }
    next.validate().map_err(|e| Refusal::Invalid(e.0))?;
    Ok(next)
}

/// Leaves of a merge patch; `events.priorities` entries are leaves of their own.
fn flatten<'a>(obj: &'a Map<String, Value>, path: &str, out: &mut Vec<(String, &'a Value)>) {
    for (k, v) in obj {
        let sub = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
        match v {
            Value::Object(inner) if !inner.is_empty() && path != "events.priorities" => flatten(inner, &sub, out),
            _ => out.push((sub, v)),
        }
    }
}

fn pointer<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(v, |v, k| v.get(k))
}

/// Applies one live key to `next`; `false` when `path` is not a live key.
fn set_live(next: &mut Settings, path: &str, value: &Value) -> Result<bool, Refusal> {
    let number = |v: &Value| v.as_f64().ok_or_else(|| Refusal::Invalid(format!("{path}: must be a number, got {v}")));
    // Event types have dots of their own: `events.priorities.node.updated`.
    if let Some(kind) = path.strip_prefix("events.priorities.") {
        match value {
            Value::Null => {
                next.events.priorities.remove(kind);
            }
            other => {
                let p: Priority = serde_json::from_value(other.clone()).map_err(|_| {
                    Refusal::Invalid(format!("{path}: must be CRITICAL, HIGH, NORMAL or LOW, got {other}"))
                })?;
                next.events.priorities.insert(kind.to_owned(), p);
            }
        }
        return Ok(true);
    }
    let parts: Vec<&str> = path.split('.').collect();
    match parts.as_slice() {
        ["gns3", "monitor_interval"] => next.gns3.monitor_interval = number(value)?,
        ["cache", "ttl"] => next.cache.ttl = number(value)?,
        ["log", "level"] => {
            let level =
                value.as_str().ok_or_else(|| Refusal::Invalid(format!("{path}: must be a string, got {value}")))?;
            next.log.level = level.to_ascii_lowercase();
        }
        ["gns3", "servers", name, "timeout"] => match next.gns3.servers.get_mut(*name) {
            Some(s) => s.timeout = number(value)?,
            None => return Ok(false),
        },
        ["events", "priorities"] if value.is_null() => next.events.priorities.clear(),
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaults() -> Settings {
        Settings::load_with(None, &|_| None, vec![]).expect("defaults")
    }

    #[test]
    fn a_patch_of_live_keys_plans_their_changes() {
        let s = defaults();
        let patch = json!({"cache": {"ttl": 5}, "log": {"level": "DEBUG"}, "gns3": {"monitor_interval": 2,
            "servers": {"default": {"timeout": 3.5}}}, "events": {"priorities": {"node.updated": "HIGH"}}});
        let next = plan_patch(&s, &patch).expect("planned");
        let (changes, restart) = diff(&s, &next);
        assert!(restart.is_empty(), "{restart:?}");
        let keys: Vec<String> = changes.iter().map(Change::key).collect();
        assert_eq!(
            keys,
            ["gns3.servers.default.timeout", "gns3.monitor_interval", "cache.ttl", "log.level", "events.priorities"]
        );
        assert_eq!(next.log.level, "debug");
    }

    #[test]
    fn empty_objects_change_nothing_and_huge_intervals_are_refused() {
        let s = defaults();
        for noop in
            [json!({}), json!({"cache": {}}), json!({"events": {"priorities": {}}}), json!({"gns3": {"servers": {}}})]
        {
            let next = plan_patch(&s, &noop).unwrap_or_else(|e| panic!("{noop}: {e:?}"));
            assert!(diff(&s, &next).0.is_empty(), "{noop} changed something");
        }
        // An empty object merged into a value replaces it: not a log level.
        assert!(matches!(plan_patch(&s, &json!({"log": {"level": {}}})), Err(Refusal::Invalid(_))));
        // Found by Schemathesis: 1.8e19 s became a panicking `Duration::from_secs_f64`.
        let huge = json!({"gns3": {"monitor_interval": 1.8446744073709552e19}});
        assert!(matches!(plan_patch(&s, &huge), Err(Refusal::Invalid(m)) if m.contains("monitor_interval")));
    }

    #[test]
    fn bad_values_unknown_keys_and_restart_keys_are_refused() {
        let s = defaults();
        assert!(
            matches!(plan_patch(&s, &json!({"cache": {"ttl": "soon"}})), Err(Refusal::Invalid(m)) if m.contains("cache.ttl"))
        );
        assert!(
            matches!(plan_patch(&s, &json!({"gns3": {"monitor_interval": 0.1}})), Err(Refusal::Invalid(m)) if m.contains("monitor_interval"))
        );
        assert!(
            matches!(plan_patch(&s, &json!({"log": {"level": "loud"}})), Err(Refusal::Invalid(m)) if m.contains("log.level"))
        );
        assert!(matches!(
            plan_patch(&s, &json!({"events": {"priorities": {"node.updated": "URGENT"}}})),
            Err(Refusal::Invalid(_))
        ));
        assert_eq!(plan_patch(&s, &json!({"cache": {"tll": 1}})), Err(Refusal::UnknownKeys(vec!["cache.tll".into()])));
        assert_eq!(
            plan_patch(&s, &json!({"http": {"bind": "127.0.0.1:1"}, "cache": {"ttl": 3}})),
            Err(Refusal::RestartRequired(vec!["http.bind".into()]))
        );
        // A restart key sent with its current value (a GET body sent back) is fine.
        assert!(plan_patch(&s, &json!({"http": {"bind": "127.0.0.1:8000"}, "cache": {"ttl": 3}})).is_ok());
        assert!(matches!(plan_patch(&s, &json!([1])), Err(Refusal::Invalid(_))));
    }

    #[test]
    fn diff_names_restart_keys_and_secrets() {
        let s = defaults();
        let mut next = s.clone();
        next.http.workers = 3;
        next.cache.ttl = 1.0;
        let (changes, restart) = diff(&s, &next);
        assert_eq!(changes, vec![Change::CacheTtl(1.0)]);
        assert_eq!(restart, vec!["http.workers".to_owned()]);
        let mut next = s.clone();
        next.redis.password = gns3_central_actors::secret::Secret::new("x");
        // Named by its key (the masked value differs: empty vs ***), never shown.
        assert_eq!(diff(&s, &next).1, vec!["redis.password".to_owned()]);
    }
}
