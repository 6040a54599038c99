//! `SubscriptionFilter`: what one subscriber wants, from the names of the WebSocket
//! protocol (docs/websocket.md): groups (`node_status`, `topology_changes`, `project_status`,
//! `server_status`, `all`), exact types (`node.started`, or a module's `alert.raised`),
//! globs with a simple `*` wildcard (`node.*`, `*.deleted`), and an optional set of
//! projects. Events without a project (server and circuit events) pass a project filter.
//!
//! Matching runs for every subscriber on every event, so everything is decided when the
//! filter is built: built-in types are one bit each in a mask (groups and globs expanded
//! into it), and only module types look at the exact names and globs. The project set is
//! a sorted vector (binary search; sets are small).
//!
//! Names that look like a type (`a.b`) but name no built-in one are taken as module types,
//! except in the built-in namespaces (`node.`, `link.`...), where they are typos
//! (`node.stated`) and refused.

use thiserror::Error;
use uuid::Uuid;

use crate::events::{Event, EventKind, Group};

/// Names in one filter, projects in one filter, length of one name.
pub const MAX_NAMES: usize = 64;
pub const MAX_PROJECTS: usize = 1024;
pub const MAX_NAME_LEN: usize = 128;

/// The first segments of the built-in types: module types cannot use them.
const RESERVED_NAMESPACES: [&str; 6] = ["node", "link", "project", "topology", "server", "circuit"];

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FilterError {
    #[error(
        "unknown group or type '{0}' (expected a group: node_status, topology_changes, project_status, \
         server_status, all; a type such as node.started or alert.raised; or a glob such as node.*)"
    )]
    Unknown(String),
    #[error("invalid subscription name '{name}': {reason}")]
    Invalid { name: String, reason: &'static str },
    #[error("too many subscription names: {0} (at most {MAX_NAMES})")]
    TooManyNames(usize),
    #[error("too many projects in one filter: {0} (at most {MAX_PROJECTS})")]
    TooManyProjects(usize),
}

/// Letters, digits, `_`, `-` and dots between non-empty segments: `alert.raised`.
pub fn valid_type_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.split('.').count() >= 2
        && s.split('.').all(|seg| !seg.is_empty() && seg.bytes().all(type_byte))
}

/// Whether a type name sits in a namespace of the built-in types (`node.`, `server.`...).
pub fn is_reserved_namespace(s: &str) -> bool {
    s.split('.').next().is_some_and(|ns| RESERVED_NAMESPACES.contains(&ns))
}

fn type_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Shows user input in an error without letting it grow the message unboundedly.
fn shown(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

/// A pattern whose only special character is `*` (any run of characters, dots included).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Glob {
    /// The literal pieces between the stars; at least two (the pattern has a star).
    parts: Vec<String>,
}

impl Glob {
    fn new(pattern: &str) -> Glob {
        Glob { parts: pattern.split('*').map(str::to_owned).collect() }
    }

    fn matches(&self, s: &str) -> bool {
        let (Some(first), Some(last)) = (self.parts.first(), self.parts.last()) else {
            return false;
        };
        let Some(rest) = s.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some(mut middle) = rest.strip_suffix(last.as_str()) else {
            return false;
        };
        // Leftmost matching of each middle piece is enough with `*` as the only wildcard.
        for part in &self.parts[1..self.parts.len() - 1] {
            match middle.find(part.as_str()) {
                Some(i) => middle = &middle[i + part.len()..],
                None => return false,
            }
        }
        true
    }
}

/// What one name selects.
enum Selector {
    All,
    Group(Group),
    Kind(EventKind),
    Type(String),
    Glob(Glob),
}

fn parse_name(name: &str) -> Result<Selector, FilterError> {
    if name.is_empty() {
        return Err(FilterError::Invalid { name: String::new(), reason: "empty name" });
    }
    if name.len() > MAX_NAME_LEN {
        return Err(FilterError::Invalid { name: shown(name), reason: "longer than 128 characters" });
    }
    if name == "all" || name == "*" {
        return Ok(Selector::All);
    }
    if let Some(g) = Group::parse(name) {
        return Ok(Selector::Group(g));
    }
    if let Some(k) = EventKind::parse(name) {
        return Ok(Selector::Kind(k));
    }
    if name.contains('*') {
        if !name.bytes().all(|b| type_byte(b) || b == b'.' || b == b'*') {
            return Err(FilterError::Invalid {
                name: shown(name),
                reason: "a glob may hold letters, digits, '_', '-', '.' and '*'",
            });
        }
        let glob = Glob::new(name);
        // `node.strated*` in a built-in namespace that matches nothing is a typo.
        let literal_ns = name.split('.').next().is_some_and(|ns| !ns.contains('*'));
        if literal_ns && is_reserved_namespace(name) && !EventKind::ALL.iter().any(|k| glob.matches(k.as_str())) {
            return Err(FilterError::Unknown(shown(name)));
        }
        return Ok(Selector::Glob(glob));
    }
    if valid_type_name(name) && !is_reserved_namespace(name) {
        return Ok(Selector::Type(name.to_owned()));
    }
    Err(FilterError::Unknown(shown(name)))
}

fn bit(k: EventKind) -> u32 {
    1u32 << (k as u32)
}

/// A subscriber's filter; cheap to clone, cheap to match.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscriptionFilter {
    /// The names as given (trimmed, `*` written `all`, duplicates removed), in order.
    names: Vec<String>,
    /// Sorted, without duplicates; empty = every project.
    projects: Vec<Uuid>,
    /// Precomputed from `names`.
    all: bool,
    known: u32,
    /// Module types named exactly, sorted.
    types: Vec<String>,
    globs: Vec<Glob>,
}

impl SubscriptionFilter {
    /// A filter from protocol names and an optional project list (empty = every project).
    pub fn new<N, S>(names: N, projects: impl IntoIterator<Item = Uuid>) -> Result<Self, FilterError>
    where
        N: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut f = SubscriptionFilter::default();
        f.add(names)?;
        f.set_projects(projects)?;
        Ok(f)
    }

    /// Every event of every project.
    pub fn all() -> Self {
        Self { names: vec!["all".into()], all: true, known: u32::MAX, ..Self::default() }
    }

    /// Adds names; on error nothing is changed.
    pub fn add<N, S>(&mut self, names: N) -> Result<(), FilterError>
    where
        N: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut merged = self.names.clone();
        for (i, raw) in names.into_iter().enumerate() {
            if i >= MAX_NAMES * 4 {
                // Counting a hostile list to the end would be work for nothing.
                return Err(FilterError::TooManyNames(i));
            }
            let name = raw.as_ref().trim();
            parse_name(name)?;
            let name = if name == "*" { "all" } else { name };
            if !merged.iter().any(|n| n == name) {
                merged.push(name.to_owned());
            }
        }
        if merged.len() > MAX_NAMES {
            return Err(FilterError::TooManyNames(merged.len()));
        }
        self.names = merged;
        self.compile();
        Ok(())
    }

    /// Removes names (as they were given); returns how many were removed.
    pub fn remove<N, S>(&mut self, names: N) -> usize
    where
        N: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let before = self.names.len();
        for raw in names.into_iter().take(MAX_NAMES * 4) {
            let name = raw.as_ref().trim();
            let name = if name == "*" { "all" } else { name };
            self.names.retain(|n| n != name);
        }
        self.compile();
        before - self.names.len()
    }

    /// Replaces the project list (empty = every project).
    pub fn set_projects(&mut self, projects: impl IntoIterator<Item = Uuid>) -> Result<(), FilterError> {
        let mut list = Vec::new();
        for (i, p) in projects.into_iter().enumerate() {
            if i >= MAX_PROJECTS * 4 {
                return Err(FilterError::TooManyProjects(i));
            }
            list.push(p);
        }
        list.sort_unstable();
        list.dedup();
        if list.len() > MAX_PROJECTS {
            return Err(FilterError::TooManyProjects(list.len()));
        }
        self.projects = list;
        Ok(())
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn projects(&self) -> &[Uuid] {
        &self.projects
    }

    /// True when no name is left: the filter matches nothing.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn compile(&mut self) {
        self.all = false;
        self.known = 0;
        self.types.clear();
        self.globs.clear();
        for name in &self.names {
            // Names were checked when added; one that fails now is simply skipped.
            match parse_name(name) {
                Ok(Selector::All) => self.all = true,
                Ok(Selector::Group(g)) => {
                    for k in EventKind::ALL.into_iter().filter(|k| k.group() == g) {
                        self.known |= bit(k);
                    }
                }
                Ok(Selector::Kind(k)) => self.known |= bit(k),
                Ok(Selector::Type(t)) => self.types.push(t),
                Ok(Selector::Glob(g)) => {
                    for k in EventKind::ALL.into_iter().filter(|k| g.matches(k.as_str())) {
                        self.known |= bit(k);
                    }
                    self.globs.push(g);
                }
                Err(_) => {}
            }
        }
        if self.all {
            self.known = u32::MAX;
        }
        self.types.sort_unstable();
        self.types.dedup();
    }

    /// Whether an event of this type (`kind` = the parsed built-in type, if it is one) and
    /// project passes.
    #[inline]
    pub fn matches(&self, kind: Option<EventKind>, kind_str: &str, project: Option<Uuid>) -> bool {
        let type_ok = match kind {
            Some(k) => self.known & bit(k) != 0,
            None => {
                self.all
                    || self.types.binary_search_by(|t| t.as_str().cmp(kind_str)).is_ok()
                    || self.globs.iter().any(|g| g.matches(kind_str))
            }
        };
        type_ok && self.project_passes(project)
    }

    #[inline]
    fn project_passes(&self, project: Option<Uuid>) -> bool {
        match project {
            Some(p) if !self.projects.is_empty() => self.projects.binary_search(&p).is_ok(),
            _ => true,
        }
    }

    /// `matches` for a stamped event (parses its type; the dispatcher parses it once instead).
    pub fn matches_event(&self, e: &Event) -> bool {
        self.matches(EventKind::parse(&e.kind), &e.kind, e.project_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventKind::*;

    fn f(names: &[&str]) -> SubscriptionFilter {
        SubscriptionFilter::new(names.iter().copied(), []).unwrap()
    }

    fn hits(filter: &SubscriptionFilter) -> Vec<EventKind> {
        EventKind::ALL.into_iter().filter(|k| filter.matches(Some(*k), k.as_str(), None)).collect()
    }

    #[test]
    fn groups_select_their_types() {
        assert_eq!(hits(&f(&["node_status"])), [NodeStarted, NodeStopped, NodeSuspended]);
        assert_eq!(hits(&f(&["server_status"])), [ServerConnected, ServerDisconnected, CircuitOpened, CircuitClosed]);
        let topo = hits(&f(&["topology_changes"]));
        assert!(topo.contains(&LinkCreated) && topo.contains(&TopologyChanged) && !topo.contains(&NodeStarted));
        assert_eq!(hits(&f(&["project_status"])).len(), 5);
        assert_eq!(hits(&f(&["all"])).len(), EventKind::ALL.len());
        assert!(f(&["all"]).matches(None, "alert.raised", None), "all includes module types");
        assert!(!f(&["node_status"]).matches(None, "alert.raised", None));
    }

    #[test]
    fn exact_types_and_module_types_match_exactly() {
        let filter = f(&["node.started", "alert.raised"]);
        assert_eq!(hits(&filter), [NodeStarted]);
        assert!(filter.matches(None, "alert.raised", None));
        assert!(!filter.matches(None, "alert.cleared", None));
    }

    #[test]
    fn globs_match_built_in_and_module_types() {
        let node = f(&["node.*"]);
        assert_eq!(hits(&node), [NodeStarted, NodeStopped, NodeSuspended, NodeCreated, NodeDeleted, NodeUpdated]);
        let deleted = f(&["*.deleted"]);
        assert_eq!(hits(&deleted), [NodeDeleted, LinkDeleted, ProjectDeleted]);
        assert!(deleted.matches(None, "vm.deleted", None));
        let alerts = f(&["alert.*"]);
        assert!(alerts.matches(None, "alert.raised", None) && !alerts.matches(None, "alerts.raised", None));
        assert!(hits(&alerts).is_empty());
        let mid = f(&["*o*.st*"]);
        assert_eq!(hits(&mid), [NodeStarted, NodeStopped]);
    }

    #[test]
    fn glob_matching_handles_edges() {
        let g = Glob::new("a*a");
        assert!(!g.matches("a") && g.matches("aa") && g.matches("aba"));
        assert!(Glob::new("*").matches("") && Glob::new("**").matches("x"));
        assert!(Glob::new("é*").matches("été") && !Glob::new("*é*x").matches("é"));
    }

    #[test]
    fn unknown_names_are_refused_with_a_clear_message() {
        let err = SubscriptionFilter::new(["xyz"], []).unwrap_err();
        assert_eq!(err, FilterError::Unknown("xyz".into()));
        assert!(err.to_string().starts_with("unknown group or type 'xyz'"));
        // A typo in a built-in namespace is not taken for a module type.
        assert!(matches!(SubscriptionFilter::new(["node.stated"], []), Err(FilterError::Unknown(_))));
        assert!(matches!(SubscriptionFilter::new(["node.zz*"], []), Err(FilterError::Unknown(_))));
        assert!(matches!(SubscriptionFilter::new(["a b.c"], []), Err(FilterError::Unknown(_))));
        assert!(matches!(SubscriptionFilter::new(["a?.*"], []), Err(FilterError::Invalid { .. })));
        assert!(matches!(SubscriptionFilter::new([""], []), Err(FilterError::Invalid { .. })));
        let long = "a.".repeat(200);
        match SubscriptionFilter::new([long.as_str()], []) {
            Err(e @ FilterError::Invalid { .. }) => assert!(e.to_string().len() < 200),
            other => panic!("{other:?}"),
        }
        let many: Vec<String> = (0..100).map(|i| format!("m{i}.x")).collect();
        assert!(matches!(SubscriptionFilter::new(&many, []), Err(FilterError::TooManyNames(100))));
    }

    #[test]
    fn project_filter_passes_events_without_a_project() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let filter = SubscriptionFilter::new(["all"], [a]).unwrap();
        assert!(filter.matches(Some(NodeStarted), "node.started", Some(a)));
        assert!(!filter.matches(Some(NodeStarted), "node.started", Some(b)));
        assert!(filter.matches(Some(ServerDisconnected), "server.disconnected", None));
        let open = f(&["all"]);
        assert!(open.matches(Some(NodeStarted), "node.started", Some(b)), "no list: every project");
    }

    #[test]
    fn names_are_added_and_removed_atomically() {
        let mut filter = f(&["node_status"]);
        assert!(filter.add(["link.*", "bogus"]).is_err());
        assert_eq!(filter.names(), ["node_status"], "a failed add changes nothing");
        filter.add([" link.* ", "*", "node_status"]).unwrap();
        assert_eq!(filter.names(), ["node_status", "link.*", "all"]);
        assert_eq!(filter.remove(["all", "nothing"]), 1);
        assert!(!filter.matches(None, "alert.raised", None));
        assert!(filter.matches(Some(LinkUpdated), "link.updated", None));
        assert_eq!(filter.remove(["node_status", "link.*"]), 2);
        assert!(filter.is_empty() && hits(&filter).is_empty());
    }

    #[test]
    fn matches_event_parses_the_type() {
        let e = Event::stamp(
            crate::events::NewEvent::new(NodeStopped, "s", crate::events::Source::Gns3, serde_json::Value::Null),
            "e",
            1,
            crate::events::Priority::High,
        );
        assert!(f(&["node_status"]).matches_event(&e));
        assert!(!f(&["project_status"]).matches_event(&e));
    }
}
