//! `contrib/grafana/gns3-central.json`: importable (the datasource is the `DS_PROMETHEUS`
//! input, used by every panel and query) and built only on metric names that `/metrics`
//! exposes, checked against a live scrape of the service.

use serde_json::Value;
use std::collections::BTreeSet;

use crate::metrics::{quiet_app, scrape};

const DASHBOARD: &str = include_str!("../../contrib/grafana/gns3-central.json");

/// Every `expr` of every panel (rows included).
fn exprs(panels: &[Value], out: &mut Vec<String>) {
    for p in panels {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(t["expr"].as_str().unwrap_or_else(|| panic!("a target without expr: {t}")).to_owned());
        }
        exprs(p["panels"].as_array().map(Vec::as_slice).unwrap_or(&[]), out);
    }
}

/// The `gns3central_*` names a PromQL expression uses.
fn names(expr: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("gns3central_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        found.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    found
}

#[actix_rt::test]
async fn the_grafana_dashboard_queries_only_exposed_metrics() {
    let dash: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let inputs = dash["__inputs"].as_array().expect("__inputs");
    assert!(inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"), "{inputs:?}");
    let panels = dash["panels"].as_array().expect("panels");
    for p in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "panel {}", p["title"]);
        for t in p["targets"].as_array().expect("targets") {
            assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "panel {}", p["title"]);
        }
    }
    let mut all = Vec::new();
    exprs(panels, &mut all);
    assert!(all.len() >= 20, "{} queries", all.len());

    let (sim, app) = quiet_app(|_| {}).await;
    // A request that calls GNS3 first, so the HTTP and GNS3 call histograms have series.
    assert_eq!(app.get("/api/v2/servers/default/projects").await.status, 200);
    let (metrics, text) = scrape(&app).await;
    let exposed: BTreeSet<&str> = metrics.samples.iter().map(|s| s.name.as_str()).collect();
    let mut used = BTreeSet::new();
    for e in &all {
        used.extend(names(e));
    }
    assert!(used.len() >= 15, "{used:?}");
    for name in &used {
        assert!(
            exposed.contains(name.as_str()),
            "the dashboard queries {name}, which /metrics does not expose:\n{text}"
        );
    }
    app.stop().await;
    sim.stop().await;
}
