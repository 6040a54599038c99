//! Which methods each documented path takes, read from the OpenAPI document itself, so
//! that a known path asked with another method answers 405 with an `Allow` header (the
//! router alone answers 404: actix matches method and path together). The document is the
//! list: a route added with its `#[utoipa::path]` is covered without touching this file.
//! Built once at startup (`KnownMethods::from_doc`) and handed to the default service.

use serde_json::Value;

/// One documented path: its segments (`None` = a `{parameter}`, matching one non-empty
/// segment) and the methods it takes, upper-case.
struct Known {
    segments: Vec<Option<String>>,
    methods: Vec<&'static str>,
}

/// The documented paths and their methods.
pub struct KnownMethods(Vec<Known>);

const METHODS: [&str; 8] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"];

fn methods_of(item: &Value) -> Vec<&'static str> {
    METHODS.into_iter().filter(|m| item.get(m.to_ascii_lowercase()).is_some()).collect()
}

impl KnownMethods {
    pub fn from_doc(doc: &Value) -> Self {
        let known = doc["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(path, item)| Known {
                segments: path
                    .split('/')
                    .map(|s| if s.starts_with('{') && s.ends_with('}') { None } else { Some(s.to_owned()) })
                    .collect(),
                methods: methods_of(item),
            })
            .collect();
        Self(known)
    }

    /// The `Allow` value for `path` (as the router saw it, percent-decoded), when it is a
    /// documented path; `None` for a path the document does not know.
    pub fn allow(&self, path: &str) -> Option<String> {
        let segs: Vec<&str> = path.split('/').collect();
        let mut methods: Vec<&str> = Vec::new();
        for k in &self.0 {
            let fits = k.segments.len() == segs.len()
                && k.segments.iter().zip(&segs).all(|(want, got)| match want {
                    Some(lit) => lit == got,
                    None => !got.is_empty(),
                });
            for m in k.methods.iter().filter(|_| fits) {
                if !methods.contains(m) {
                    methods.push(m);
                }
            }
        }
        (!methods.is_empty()).then(|| methods.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_paths_list_their_methods() {
        let known = KnownMethods::from_doc(&super::super::document(
            &crate::config::Settings::load_with(None, &|_| None, vec![]).expect("defaults"),
        ));
        assert_eq!(known.allow("/healthz").as_deref(), Some("GET"));
        assert_eq!(known.allow("/api/v2/config").as_deref(), Some("GET, PATCH"));
        assert_eq!(known.allow("/api/v2/modules/monitoring").as_deref(), Some("GET, DELETE"));
        assert_eq!(known.allow("/api/v2/servers/default/reconnect").as_deref(), Some("POST"));
        assert_eq!(known.allow("/api/v2/servers//reconnect"), None, "a parameter is never empty");
        assert_eq!(known.allow("/api/v2/nowhere"), None);
    }
}
