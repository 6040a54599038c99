//! The GNS3 path of a passthrough call, and who may send it where.
//!
//! The path below `/api/v2/servers/{server}/gns3/` is taken as sent, split on `/`, and every
//! segment percent-decoded once. What the checks see (project scope, allow/deny rules, the
//! refused notification streams) is these decoded segments, and what GNS3 gets is exactly
//! them encoded again: a segment that would read differently on the two sides (`.`, `..`,
//! an encoded `/` or `\`, bytes that are not UTF-8, an empty segment inside the path) is
//! refused with 400 `invalid_path` rather than guessed at.

use actix_web::http::StatusCode;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, Code};

/// Where GNS3's events are to be had instead of its notification streams.
pub const EVENTS_WS: &str = "/ws/gns3/events/";

/// A checked GNS3 path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gns3Path {
    /// Decoded segments (a trailing slash is not one).
    pub segments: Vec<String>,
    /// Below the API root, encoded again, starting with `/` (trailing slash kept).
    pub encoded: String,
}

impl Gns3Path {
    /// From the request's raw path: everything after the `gns3` segment.
    pub fn from_request_path(raw: &str) -> Result<Gns3Path, ApiError> {
        // ["", "api", "v2", "servers", server, "gns3", tail...]
        let tail: Vec<&str> = raw.split('/').skip(6).collect();
        let trailing = tail.len() > 1 && tail.last() == Some(&"");
        let raw_segments = if trailing { &tail[..tail.len() - 1] } else { &tail[..] };
        let mut segments = Vec::with_capacity(raw_segments.len());
        for raw_segment in raw_segments {
            segments.push(decode_segment(raw_segment)?);
        }
        if segments.is_empty() || segments == [""] {
            return Err(bad_path("name a GNS3 path after /gns3/, e.g. /gns3/version or /gns3/projects".into()));
        }
        let mut encoded = String::with_capacity(raw.len());
        for s in &segments {
            encoded.push('/');
            encode_segment(s, &mut encoded);
        }
        if trailing {
            encoded.push('/');
        }
        Ok(Gns3Path { segments, encoded })
    }

    /// `/projects/{id}/nodes` as the checks saw it (for logs, errors and the audit trail).
    pub fn display(&self) -> String {
        format!("/{}", self.segments.join("/"))
    }

    /// The segment that names the project, when the path is a project's: `projects/{id}/…`
    /// (controller) or `compute/projects/{id}/…` (v2's compute API).
    fn project_segment(&self) -> Option<Option<&str>> {
        let s = &self.segments;
        match (s.first().map(String::as_str), s.get(1).map(String::as_str)) {
            (Some("projects"), id) => Some(id),
            (Some("compute"), Some("projects")) => Some(s.get(2).map(String::as_str)),
            _ => None,
        }
    }

    /// The project, when the path is one project's and names it by UUID.
    pub fn project(&self) -> Option<Uuid> {
        self.project_segment().flatten().and_then(|id| Uuid::parse_str(id).ok())
    }

    /// The node of a `projects/{id}/nodes/{node_id}/…` path.
    pub fn node(&self) -> Option<Uuid> {
        let s = &self.segments;
        (s.len() >= 4 && s[0] == "projects" && s[2] == "nodes").then(|| Uuid::parse_str(&s[3]).ok()).flatten()
    }

    /// GNS3's notification streams (HTTP and WebSocket) are not passed through.
    pub fn refuse_streams(&self, upgrade: bool) -> Result<(), ApiError> {
        let ws = upgrade || self.segments.last().is_some_and(|s| s == "ws");
        if !ws && !self.segments.iter().any(|s| s == "notifications") {
            return Ok(());
        }
        Err(ApiError::bad_request(
            Code::UseEventStream,
            format!(
                "GNS3's notification streams and WebSockets are not passed through ({}): the hub follows them \
                 itself; subscribe to {EVENTS_WS} for the same events, numbered and resumable",
                self.display()
            ),
        )
        .with_details(serde_json::json!({ "use": EVENTS_WS })))
    }

    /// A project-scoped credential may touch only its projects' paths, and nothing outside a
    /// project that changes state; reads outside projects (version, templates...) it may.
    pub fn check_scope(&self, principal: &Principal, read: bool) -> Result<(), ApiError> {
        if !principal.is_scoped() {
            return Ok(());
        }
        match self.project_segment() {
            Some(_) => match self.project() {
                Some(p) => principal.check_project(&p),
                None => Err(out_of_scope(format!(
                    "the credential '{}' is limited to some projects and {} is not one of them by id; \
                     use /gns3/projects/{{project_id}}/...",
                    principal.name,
                    self.display()
                ))),
            },
            None if read => Ok(()),
            None => Err(out_of_scope(format!(
                "the credential '{}' is limited to some projects and {} changes state outside them",
                principal.name,
                self.display()
            ))),
        }
    }
}

fn out_of_scope(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, Code::ProjectOutOfScope, message)
}

fn bad_path(message: String) -> ApiError {
    ApiError::bad_request(Code::InvalidPath, message)
}

fn decode_segment(raw: &str) -> Result<String, ApiError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(byte) = byte else {
                return Err(bad_path(format!("'{raw}' has a '%' that is not followed by two hex digits")));
            };
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).map_err(|_| bad_path(format!("'{raw}' does not decode to UTF-8")))?;
    if s.is_empty() || s == "." || s == ".." || s.contains('/') || s.contains('\\') {
        return Err(bad_path(format!(
            "the GNS3 path segment '{raw}' is not allowed (empty, '.', '..', or an encoded '/' or '\\')"
        )));
    }
    Ok(s)
}

/// Percent-encodes all but RFC 3986's unreserved characters and the sub-delimiters a path
/// segment may hold.
fn encode_segment(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn path(tail: &str) -> Result<Gns3Path, ApiError> {
        Gns3Path::from_request_path(&format!("/api/v2/servers/default/gns3/{tail}"))
    }

    #[test]
    fn segments_are_decoded_once_and_encoded_again() {
        let p = path("compute/qemu/images/my%20disk.qcow2").unwrap();
        assert_eq!(p.segments, ["compute", "qemu", "images", "my disk.qcow2"]);
        assert_eq!(p.encoded, "/compute/qemu/images/my%20disk.qcow2");
        assert_eq!(path("projects/").unwrap().encoded, "/projects/");
        assert_eq!(path("a%2541").unwrap().encoded, "/a%2541");
    }

    #[test]
    fn ambiguous_segments_are_refused() {
        for bad in ["", "projects//nodes", "projects/%2e%2e/computes", "..", "a%2Fb", "a%5cb", "a%zz", "%ff"] {
            assert_eq!(path(bad).unwrap_err().code, Code::InvalidPath, "{bad}");
        }
    }

    #[test]
    fn streams_are_refused_with_a_pointer() {
        for p in ["notifications", "notifications/ws", "projects/x/notifications", "projects/x/nodes/y/console/ws"] {
            let e = path(p).unwrap().refuse_streams(false).unwrap_err();
            assert_eq!((e.code, e.status.as_u16()), (Code::UseEventStream, 400), "{p}");
            assert!(e.message.contains(EVENTS_WS));
        }
        assert!(path("projects/x/nodes").unwrap().refuse_streams(true).is_err());
        assert!(path("projects/x/nodes").unwrap().refuse_streams(false).is_ok());
    }

    #[test]
    fn a_scoped_credential_keeps_to_its_projects() {
        let mine = Uuid::new_v4();
        let who = Principal { name: "lab".into(), role: Role::Operator, projects: Some([mine].into()) };
        let ok = |p: &str, read: bool| path(p).unwrap().check_scope(&who, read).is_ok();
        assert!(ok(&format!("projects/{mine}/nodes"), false));
        assert!(ok(&format!("compute/projects/{mine}"), true));
        assert!(!ok(&format!("projects/{}/nodes", Uuid::new_v4()), true));
        assert!(!ok("projects", true), "the list shows every project");
        assert!(!ok("projects/load", false));
        assert!(ok("templates", true));
        assert!(!ok("templates", false));
        let all = Principal { projects: None, ..who };
        assert!(path("projects").unwrap().check_scope(&all, false).is_ok());
    }

    #[test]
    fn project_and_node_are_read_from_the_path() {
        let (p, n) = (Uuid::new_v4(), Uuid::new_v4());
        let gp = path(&format!("projects/{p}/nodes/{n}/start")).unwrap();
        assert_eq!((gp.project(), gp.node()), (Some(p), Some(n)));
        assert_eq!(path("version").unwrap().project(), None);
    }
}
