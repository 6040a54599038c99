//! The bodies a sink POSTs: the envelope as it is (`json`), a Slack incoming-webhook
//! message (`slack`), or a Microsoft Teams `MessageCard` (`teams`). Plain functions.

use bytes::Bytes;
use serde_json::{json, Value};

use super::config::SinkFormat;
use crate::events::Event;
use crate::events::Priority;

/// One line for people: `[HIGH] node.started on default: R1 (node …, project …)`.
pub fn headline(e: &Event) -> String {
    let mut s = format!("[{}] {} on {}", e.priority.as_str(), e.kind, e.server);
    let name = e.data.get("name").and_then(Value::as_str);
    let mut parts = Vec::new();
    if let Some(n) = e.node_id {
        parts.push(format!("node {n}"));
    }
    if let Some(p) = e.project_id {
        parts.push(format!("project {p}"));
    }
    match (name, parts.is_empty()) {
        (Some(n), true) => s.push_str(&format!(": {n}")),
        (Some(n), false) => s.push_str(&format!(": {n} ({})", parts.join(", "))),
        (None, false) => s.push_str(&format!(" ({})", parts.join(", "))),
        (None, true) => {}
    }
    s
}

fn color(p: Priority) -> &'static str {
    match p {
        Priority::Critical => "D32F2F",
        Priority::High => "F57C00",
        Priority::Normal => "1976D2",
        Priority::Low => "9E9E9E",
    }
}

fn facts(e: &Event) -> Vec<(&'static str, String)> {
    let mut f =
        vec![("Type", e.kind.clone()), ("Priority", e.priority.as_str().to_owned()), ("Server", e.server.clone())];
    if let Some(p) = e.project_id {
        f.push(("Project", p.to_string()));
    }
    if let Some(n) = e.node_id {
        f.push(("Node", n.to_string()));
    }
    if let Some(c) = &e.correlation_id {
        f.push(("Correlation", c.clone()));
    }
    f.push(("Event", e.id.clone()));
    f.push(("Time", e.timestamp.to_rfc3339()));
    f
}

/// The body for `format`; `json` reuses the envelope's bytes as the dispatcher made them.
pub fn body(format: SinkFormat, e: &Event, envelope: &Bytes) -> Bytes {
    match format {
        SinkFormat::Json => envelope.clone(),
        SinkFormat::Slack => {
            let fields: Vec<Value> =
                facts(e).into_iter().map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{v}")})).collect();
            json!({
                "text": headline(e),
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}*", headline(e))}},
                    {"type": "section", "fields": fields.into_iter().take(10).collect::<Vec<_>>()},
                ],
            })
            .to_string()
            .into()
        }
        SinkFormat::Teams => {
            let facts: Vec<Value> = facts(e).into_iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
            json!({
                "@type": "MessageCard",
                "@context": "http://schema.org/extensions",
                "summary": headline(e),
                "themeColor": color(e.priority),
                "title": format!("gns3-central: {}", e.kind),
                "sections": [{"activityTitle": headline(e), "facts": facts}],
            })
            .to_string()
            .into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EventKind, NewEvent, Source};

    fn event() -> Event {
        let mut n = NewEvent::new(EventKind::NodeStarted, "default", Source::Gns3, json!({"name": "R1"}))
            .project(Some(uuid::Uuid::nil()))
            .node(Some(uuid::Uuid::nil()));
        n.correlation_id = Some("c-1".into());
        Event::stamp(n, "e", 7, Priority::High)
    }

    #[test]
    fn slack_and_teams_shapes() {
        let e = event();
        let env = Bytes::from(serde_json::to_vec(&e).unwrap());
        assert_eq!(body(SinkFormat::Json, &e, &env), env);
        let slack: Value = serde_json::from_slice(&body(SinkFormat::Slack, &e, &env)).unwrap();
        assert!(slack["text"].as_str().unwrap().starts_with("[HIGH] node.started on default: R1 (node "), "{slack}");
        assert_eq!(slack["blocks"][0]["type"], "section");
        assert!(slack["blocks"][1]["fields"].to_string().contains("c-1"));
        let teams: Value = serde_json::from_slice(&body(SinkFormat::Teams, &e, &env)).unwrap();
        assert_eq!((teams["@type"].as_str(), teams["themeColor"].as_str()), (Some("MessageCard"), Some("F57C00")));
        let facts = teams["sections"][0]["facts"].as_array().unwrap();
        assert!(facts.iter().any(|f| f["name"] == "Correlation" && f["value"] == "c-1"));
    }
}
