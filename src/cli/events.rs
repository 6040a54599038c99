//! `gns3-central events stats`: the event statistics of a running instance
//! (`GET /api/v2/events/stats`) as a readable summary, or the JSON with `--json`.
//! Exit 0 when events flow normally; 1 when live events are off (`--no-events`) or the
//! queues are at least 90 % full (events are being shed or refused); 2 when no instance
//! answers or it refuses the token.

use serde_json::Value;
use std::process::ExitCode;

use super::args::StatusArgs;
use super::status::{base_url, fetch};

/// Queue fill (share of `events.queue_capacity`) from which the command reports trouble.
const FULL: f64 = 0.9;

pub async fn stats(args: StatusArgs) -> ExitCode {
    let base = match base_url(&args) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let (status, body) = match fetch(&base, "/api/v2/events/stats", &args).await {
        Ok(r) => r,
        Err(code) => return code,
    };
    if status != 200 {
        let msg = body["error"]["message"].as_str().unwrap_or("no message");
        if args.json {
            outln!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
        }
        errln!("gns3-central: {base} has no event statistics ({status}): {msg}");
        return ExitCode::from(1);
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
    } else {
        out!("{}", summary(&base, &body));
    }
    if congested(&body) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn congested(s: &Value) -> bool {
    let q = &s["queues"];
    let (total, cap) = (q["total"].as_f64().unwrap_or(0.0), q["capacity"].as_f64().unwrap_or(0.0));
    cap > 0.0 && total >= cap * FULL
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn ms(v: &Value) -> String {
    v.as_f64().map(|m| format!("{m:.2} ms")).unwrap_or_else(|| "-".into())
}

/// The readable form of `/api/v2/events/stats`.
pub fn summary(base: &str, s: &Value) -> String {
    let mut out = String::new();
    let q = &s["queues"];
    out.push_str(&format!(
        "events at {base}: epoch {}, last seq {}, {} subscribers{}\n",
        s["epoch"].as_str().unwrap_or("?"),
        n(&s["last_seq"]),
        n(&s["subscribers"]),
        if congested(s) { "  QUEUES NEARLY FULL" } else { "" },
    ));
    out.push_str(&format!(
        "  queues   {} / {} (CRITICAL {}, HIGH {}, NORMAL {}, LOW {}, express {})\n",
        n(&q["total"]),
        n(&q["capacity"]),
        n(&q["critical"]),
        n(&q["high"]),
        n(&q["normal"]),
        n(&q["low"]),
        n(&q["express"]),
    ));
    out.push_str(&format!(
        "  {:<9}{:>11}{:>11}{:>11}{:>8}{:>9}{:>9}{:>8}   p50 / p99 latency\n",
        "", "published", "dispatched", "delivered", "shed", "refused", "retried", "dead"
    ));
    let row = |label: &str, c: &Value, lat: Option<&Value>| {
        let latency = lat.map(|l| format!("   {} / {}", ms(&l["p50_ms"]), ms(&l["p99_ms"]))).unwrap_or_default();
        format!(
            "  {label:<9}{:>11}{:>11}{:>11}{:>8}{:>9}{:>9}{:>8}{latency}\n",
            n(&c["published"]),
            n(&c["dispatched"]),
            n(&c["delivered"]),
            n(&c["shed"]),
            n(&c["refused"]),
            n(&c["retried"]),
            n(&c["dead_lettered"]),
        )
    };
    for p in ["CRITICAL", "HIGH", "NORMAL", "LOW"] {
        out.push_str(&row(p, &s["by_priority"][p], Some(&s["latency_by_priority"][p])));
    }
    out.push_str(&row("total", &s["totals"], Some(&s["latency"])));
    if let Some(types) = s["by_type"].as_object().filter(|t| !t.is_empty()) {
        out.push_str("  by type:\n");
        for (kind, c) in types {
            out.push_str(&format!(
                "    {kind:<22} published {:<8} delivered {:<8} shed {:<6} dead {}\n",
                n(&c["published"]),
                n(&c["delivered"]),
                n(&c["shed"]),
                n(&c["dead_lettered"]),
            ));
        }
    }
    out.push_str(&format!(
        "  history {} / {} events; dead letters kept {} ({} since start); retries pending {}\n",
        n(&s["history"]["len"]),
        n(&s["history"]["capacity"]),
        n(&s["dead_letters"]),
        n(&s["dead_letters_total"]),
        n(&s["pending_retries"]),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_shows_priorities_types_and_congestion() {
        let c = serde_json::json!({"published": 5, "dispatched": 5, "delivered": 10, "shed": 1, "refused": 0, "retried": 2, "dead_lettered": 0});
        let s = serde_json::json!({
            "epoch": "abcd1234", "last_seq": 5, "subscribers": 2,
            "queues": {"capacity": 10, "total": 9, "critical": 0, "high": 0, "normal": 0, "low": 9, "express": 0},
            "by_priority": {"LOW": c}, "totals": c, "by_type": {"node.updated": c},
            "latency_by_priority": {"LOW": {"p50_ms": 0.5, "p99_ms": 1.25}}, "latency": {},
            "history": {"len": 5, "capacity": 100}, "dead_letters": 0, "dead_letters_total": 0, "pending_retries": 0
        });
        let text = summary("http://x", &s);
        assert!(text.contains("epoch abcd1234, last seq 5, 2 subscribers  QUEUES NEARLY FULL"), "{text}");
        assert!(text.contains("0.50 ms / 1.25 ms"), "{text}");
        assert!(text.contains("node.updated"), "{text}");
        assert!(congested(&s));
    }
}
