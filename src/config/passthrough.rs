//! `[passthrough]`: which GNS3 paths `/api/v2/servers/{server}/gns3/{path}` forwards.
//!
//! A rule is `[METHOD ]PATTERN`: the pattern's segments are matched against the first
//! segments of the path below the API root (`projects/{id}/nodes`, no `/v2`), `*` matching
//! any one segment, so a pattern also covers everything below it (`projects/*/snapshots`
//! covers `projects/{id}/snapshots/{sid}/restore`); without a method the rule holds for every
//! method. A path passes when `allow` is empty or one of its rules matches, and no `deny`
//! rule matches (deny wins). GNS3's notification streams are refused whatever the lists say.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PassthroughSettings {
    /// Rules a path must match one of (empty: every path).
    pub allow: Vec<String>,
    /// Rules no path may match.
    pub deny: Vec<String>,
}

/// One parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRule {
    /// Upper-case; `None`: every method.
    method: Option<String>,
    segments: Vec<String>,
    text: String,
}

impl PathRule {
    pub fn parse(raw: &str) -> Result<PathRule, String> {
        let text = raw.trim();
        let (method, pattern) = match text.split_once(char::is_whitespace) {
            Some((m, p)) => (Some(m.to_ascii_uppercase()), p.trim()),
            None => (None, text),
        };
        if let Some(m) = &method {
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(format!("'{raw}': the method must be a word like GET or DELETE"));
            }
        }
        let pattern = pattern.trim_matches('/');
        let segments: Vec<String> = pattern.split('/').map(str::to_owned).collect();
        if pattern.is_empty() || segments.iter().any(|s| s.is_empty() || s == "." || s == "..") {
            return Err(format!("'{raw}': the path must be segments like 'projects/*/nodes' (no empty, '.' or '..')"));
        }
        Ok(PathRule { method, segments, text: text.to_owned() })
    }

    /// Whether the rule covers `method` on the path given as its decoded segments.
    pub fn matches(&self, method: &str, path: &[String]) -> bool {
        self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path.len() >= self.segments.len()
            && self.segments.iter().zip(path).all(|(p, s)| p == "*" || p == s)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// The parsed lists.
#[derive(Debug, Clone, Default)]
pub struct PathRules {
    allow: Vec<PathRule>,
    deny: Vec<PathRule>,
}

impl PathRules {
    pub fn from_settings(s: &PassthroughSettings) -> Result<PathRules, String> {
        let parse = |key: &str, list: &[String]| {
            list.iter()
                .enumerate()
                .map(|(i, r)| PathRule::parse(r).map_err(|e| format!("passthrough.{key}[{i}]: {e}")))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(PathRules { allow: parse("allow", &s.allow)?, deny: parse("deny", &s.deny)? })
    }

    /// `Err(rule)`: refused, by that deny rule or (`None`) by matching no allow rule.
    pub fn check(&self, method: &str, path: &[String]) -> Result<(), Option<&str>> {
        if let Some(r) = self.deny.iter().find(|r| r.matches(method, path)) {
            return Err(Some(r.as_str()));
        }
        if self.allow.is_empty() || self.allow.iter().any(|r| r.matches(method, path)) {
            return Ok(());
        }
        Err(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<String> {
        p.split('/').map(str::to_owned).collect()
    }

    #[test]
    fn rules_match_by_prefix_method_and_wildcard() {
        let r = PathRule::parse("delete projects/*").unwrap();
        assert!(r.matches("DELETE", &segs("projects/abc")));
        assert!(r.matches("DELETE", &segs("projects/abc/nodes/x")));
        assert!(!r.matches("GET", &segs("projects/abc")));
        assert!(!r.matches("DELETE", &segs("projects")));
        let any = PathRule::parse("/compute/").unwrap();
        assert!(any.matches("POST", &segs("compute/qemu/images/a.img")));
        assert!(!any.matches("POST", &segs("computes")));
    }

    #[test]
    fn deny_wins_and_an_empty_allow_list_allows_all() {
        let s = PassthroughSettings { allow: vec![], deny: vec!["compute".into()] };
        let rules = PathRules::from_settings(&s).unwrap();
        assert_eq!(rules.check("GET", &segs("compute/qemu/images")), Err(Some("compute")));
        assert_eq!(rules.check("GET", &segs("projects")), Ok(()));
        let s = PassthroughSettings { allow: vec!["GET projects".into()], deny: vec!["projects/*/snapshots".into()] };
        let rules = PathRules::from_settings(&s).unwrap();
        assert_eq!(rules.check("GET", &segs("projects/p/nodes")), Ok(()));
        assert_eq!(rules.check("POST", &segs("projects/p/nodes")), Err(None));
        assert!(rules.check("GET", &segs("projects/p/snapshots")).is_err());
    }

    #[test]
    fn bad_rules_name_the_key() {
        let s = PassthroughSettings { allow: vec![], deny: vec!["ok".into(), "projects//x".into()] };
        assert!(PathRules::from_settings(&s).unwrap_err().starts_with("passthrough.deny[1]"));
        assert!(PathRule::parse("G3T projects").is_err());
        assert!(PathRule::parse("").is_err());
    }
}
