//! Cache key names, the same for both backends:
//! `<prefix>:topo:<server>:<project_id>` (one project's topology) and
//! `<prefix>:topo:<server>:projects` (the server's project list).
//!
//! Server names from the configuration are already plain (`[A-Za-z0-9_-]`); anything else
//! a caller passes is percent-encoded so it can neither collide with another server's keys
//! (a `:` in the name) nor widen a `SCAN` pattern (a `*`).

use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned() }
    }

    pub fn topology(&self, server: &str, project_id: Uuid) -> String {
        format!("{}:topo:{}:{project_id}", self.prefix, encode(server))
    }

    pub fn projects(&self, server: &str) -> String {
        format!("{}:topo:{}:projects", self.prefix, encode(server))
    }

    /// What every key of `server` starts with.
    pub fn server_prefix(&self, server: &str) -> String {
        format!("{}:topo:{}:", self.prefix, encode(server))
    }

    /// A `SCAN MATCH` pattern for every key of `server`.
    pub fn server_pattern(&self, server: &str) -> String {
        format!("{}*", glob_escape(&self.server_prefix(server)))
    }

    /// A `SCAN MATCH` pattern for every key of this cache.
    pub fn all_pattern(&self) -> String {
        format!("{}*", glob_escape(&format!("{}:", self.prefix)))
    }
}

/// Keeps `[A-Za-z0-9_.-]`; percent-encodes every other byte.
fn encode(segment: &str) -> std::borrow::Cow<'_, str> {
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    if segment.bytes().all(plain) && !segment.is_empty() {
        return segment.into();
    }
    if segment.is_empty() {
        return "%".into();
    }
    let mut out = String::with_capacity(segment.len() * 3);
    for b in segment.bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.into()
}

/// Escapes Redis glob characters so a literal prefix matches only itself.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_are_namespaced_by_prefix_and_server() {
        let k = Keys::new("gns3central");
        let p = Uuid::parse_str("68dca439-0000-4000-8000-000000000002").unwrap();
        assert_eq!(k.topology("default", p), "gns3central:topo:default:68dca439-0000-4000-8000-000000000002");
        assert_eq!(k.projects("lab-2"), "gns3central:topo:lab-2:projects");
        assert_eq!(k.server_pattern("default"), "gns3central:topo:default:*");
        assert_eq!(k.all_pattern(), "gns3central:*");
    }

    #[test]
    fn odd_server_names_cannot_collide_or_widen_patterns() {
        let k = Keys::new("p");
        assert_eq!(k.projects("a:b"), "p:topo:a%3Ab:projects");
        assert_eq!(k.server_pattern("*"), "p:topo:%2A:*");
        assert_ne!(k.projects(""), k.projects("%"));
    }
}
