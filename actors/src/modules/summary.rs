//! `NetworkSummary`: the whole network in numbers (projects, nodes per status and per
//! type, links, servers), computed from topologies as a plain function.

use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

use crate::gns3::ServerTopology;

#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct ServerSummary {
    pub server: String,
    pub gns3_version: Option<String>,
    pub projects: usize,
    pub nodes: usize,
    pub links: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct NetworkSummary {
    pub servers: Vec<ServerSummary>,
    /// Servers that could not be read, with the reason.
    pub unavailable: BTreeMap<String, String>,
    pub projects: usize,
    /// Projects per status (`opened`, `closed`).
    pub projects_by_status: BTreeMap<String, usize>,
    pub nodes: usize,
    /// Nodes per status (`started`, `stopped`, `suspended`; `unknown` when GNS3 gave none).
    pub nodes_by_status: BTreeMap<String, usize>,
    /// Nodes per type (`qemu`, `vpcs`...).
    pub nodes_by_type: BTreeMap<String, usize>,
    pub links: usize,
}

pub fn summarize(topologies: &[ServerTopology], unavailable: BTreeMap<String, String>) -> NetworkSummary {
    let mut s = NetworkSummary { unavailable, ..NetworkSummary::default() };
    for t in topologies {
        let mut one =
            ServerSummary { server: t.server.clone(), gns3_version: t.gns3_version.clone(), ..Default::default() };
        for p in &t.projects {
            one.projects += 1;
            let status = p.project.status.clone().unwrap_or_else(|| "unknown".into());
            *s.projects_by_status.entry(status).or_default() += 1;
            for n in &p.nodes {
                one.nodes += 1;
                *s.nodes_by_status.entry(n.status.clone().unwrap_or_else(|| "unknown".into())).or_default() += 1;
                *s.nodes_by_type.entry(n.node_type.clone().unwrap_or_else(|| "unknown".into())).or_default() += 1;
            }
            one.links += p.links.len();
        }
        s.projects += one.projects;
        s.nodes += one.nodes;
        s.links += one.links;
        s.servers.push(one);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_per_status_and_type() {
        let node = |status: &str, ty: &str| json!({"node_id": uuid::Uuid::new_v4(), "name": "n", "status": status, "node_type": ty});
        let t: ServerTopology = serde_json::from_value(json!({
            "server": "default", "gns3_version": "2.2.61", "api_version": "v2", "fetched_at": "2026-11-30T00:00:00Z",
            "projects": [
                {"project": {"project_id": uuid::Uuid::new_v4(), "name": "a", "status": "opened"},
                 "nodes": [node("started", "qemu"), node("stopped", "qemu"), node("started", "vpcs")],
                 "links": [{"link_id": uuid::Uuid::new_v4(), "nodes": []}]},
                {"project": {"project_id": uuid::Uuid::new_v4(), "name": "b", "status": "closed"}, "nodes": [], "links": []}
            ]
        })).expect("a topology");
        let s = summarize(&[t], BTreeMap::from([("lab2".into(), "down".into())]));
        assert_eq!((s.projects, s.nodes, s.links), (2, 3, 1));
        assert_eq!(s.nodes_by_status["started"], 2);
        assert_eq!(s.nodes_by_type["qemu"], 2);
        assert_eq!(s.projects_by_status["closed"], 1);
        assert_eq!(s.servers[0].nodes, 3);
        assert_eq!(s.unavailable["lab2"], "down");
    }
}
