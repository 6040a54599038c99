//! The stand-in's initial topology and its `--activity`: random, realistic changes at a
//! given rate (node start/stop/suspend, node create/delete, link create/delete) made through
//! the same model calls as REST, so they send the same notifications. Bounded: it deletes
//! only the nodes and links it created, creates at most `MAX_ACTIVITY_NODES` nodes and
//! `MAX_ACTIVITY_LINKS` links per project, and leaves alone nodes a client changed in the
//! last `QUIET_AFTER_CLIENT` (so a test or a user acting on a node is not raced by it).
//! With a seed, the same ticks make the same changes.

use rand::Rng;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

use super::nodes::Action;
use super::state::{Model, NodeStatus, Project};
use super::{lock, Shared, SimulatorOptions};

/// Adapters (= ports) of the nodes the stand-in creates: the chain uses 2, activity the rest.
pub const NODE_ADAPTERS: u64 = 4;
/// Nodes the activity may add to one project (on top of the initial ones).
pub const MAX_ACTIVITY_NODES: usize = 4;
/// Links the activity may add to one project.
pub const MAX_ACTIVITY_LINKS: usize = 6;
/// How long a node changed by a client is left alone by the activity.
pub const QUIET_AFTER_CLIENT: Duration = Duration::from_secs(10);

/// What one activity tick did (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    StartNode,
    StopNode,
    SuspendNode,
    CreateNode,
    DeleteNode,
    CreateLink,
    DeleteLink,
}

const CHANGES: [(Change, u32); 7] = [
    (Change::StartNode, 24),
    (Change::StopNode, 18),
    (Change::SuspendNode, 8),
    (Change::CreateNode, 12),
    (Change::DeleteNode, 10),
    (Change::CreateLink, 16),
    (Change::DeleteLink, 12),
];

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn qemu_node(name: &str, x: i64, y: i64) -> Map<String, Value> {
    obj(json!({
        "name": name, "node_type": "qemu", "compute_id": "local", "x": x, "y": y,
        "properties": {"qemu_path": "/usr/bin/qemu-system-x86_64", "ram": 256, "adapters": NODE_ADAPTERS},
    }))
}

/// `projects` open projects `lab-1`.. (auto_close off, so a demo does not lose them), each
/// with `nodes` qemu nodes `R1`.. laid out on a grid, every other one started, and with
/// `links`, a chain: adapter 1 of each node to adapter 0 of the next.
pub fn build_topology(model: &mut Model, opts: &SimulatorOptions) {
    for pi in 1..=opts.projects {
        let Ok(project) = model.create_project(&obj(json!({"name": format!("lab-{pi}"), "auto_close": false}))) else {
            continue;
        };
        let pid = project["project_id"].as_str().unwrap_or_default().to_owned();
        let mut ids = Vec::new();
        for ni in 0..opts.nodes {
            let (x, y) = ((ni % 6) as i64 * 150 - 375, (ni / 6) as i64 * 130 - 200);
            if let Ok(node) = model.create_node(&pid, &qemu_node(&format!("R{}", ni + 1), x, y), false) {
                ids.push(node["node_id"].as_str().unwrap_or_default().to_owned());
            }
        }
        if opts.links {
            for pair in ids.windows(2) {
                let ends = json!({"nodes": [
                    {"node_id": pair[0], "adapter_number": 1, "port_number": 0},
                    {"node_id": pair[1], "adapter_number": 0, "port_number": 0},
                ]});
                let _ = model.create_link(&pid, &obj(ends), false);
            }
        }
        if let Ok(i) = model.index(&pid) {
            for j in (0..model.projects[i].nodes.len()).step_by(2) {
                model.apply_action(i, j, Action::Start, false);
            }
            for n in &mut model.projects[i].nodes {
                n.touched = None;
            }
        }
    }
}

/// Makes one random change in a random open project; `None` when nothing applies.
pub fn step(model: &mut Model, now: Instant) -> Option<Change> {
    let open: Vec<usize> = (0..model.projects.len()).filter(|&i| model.projects[i].opened).collect();
    if open.is_empty() {
        return None;
    }
    let i = open[model.rng().random_range(0..open.len())];
    let total: u32 = CHANGES.iter().map(|(_, w)| w).sum();
    let mut roll = model.rng().random_range(0..total);
    let mut first = 0;
    for (k, (_, weight)) in CHANGES.iter().enumerate() {
        if roll < *weight {
            first = k;
            break;
        }
        roll -= weight;
    }
    // The drawn change first; if it does not apply, the next ones in turn.
    (0..CHANGES.len()).map(|k| CHANGES[(first + k) % CHANGES.len()].0).find(|&c| try_change(model, i, c, now))
}

fn quiet(n: &super::state::Node, now: Instant) -> bool {
    n.touched.is_none_or(|t| now.duration_since(t) >= QUIET_AFTER_CLIENT)
}

fn pick<T: Copy>(model: &mut Model, items: &[T]) -> Option<T> {
    if items.is_empty() {
        return None;
    }
    let k = model.rng().random_range(0..items.len());
    Some(items[k])
}

fn nodes_where(p: &Project, now: Instant, f: impl Fn(&super::state::Node) -> bool) -> Vec<usize> {
    (0..p.nodes.len()).filter(|&j| quiet(&p.nodes[j], now) && f(&p.nodes[j])).collect()
}

fn try_change(model: &mut Model, i: usize, change: Change, now: Instant) -> bool {
    let p = &model.projects[i];
    let pid = p.id.clone();
    let action = |model: &mut Model, candidates: Vec<usize>, action: Action| match pick(model, &candidates) {
        Some(j) => {
            model.apply_action(i, j, action, false);
            true
        }
        None => false,
    };
    match change {
        Change::StartNode => {
            let c = nodes_where(p, now, |n| n.status != NodeStatus::Started);
            action(model, c, Action::Start)
        }
        Change::StopNode => {
            let c = nodes_where(p, now, |n| n.status != NodeStatus::Stopped);
            action(model, c, Action::Stop)
        }
        Change::SuspendNode => {
            let c = nodes_where(p, now, |n| n.status == NodeStatus::Started);
            action(model, c, Action::Suspend)
        }
        Change::CreateNode => {
            if p.nodes.iter().filter(|n| n.from_activity).count() >= MAX_ACTIVITY_NODES {
                return false;
            }
            let (x, y) = (model.rng().random_range(-400..400), model.rng().random_range(-300..300));
            model.create_node(&pid, &qemu_node("auto{0}", x, y), true).is_ok()
        }
        Change::DeleteNode => {
            let c = nodes_where(p, now, |n| n.from_activity);
            match pick(model, &c) {
                Some(j) => {
                    let nid = model.projects[i].nodes[j].id.clone();
                    model.delete_node(&pid, &nid).is_ok()
                }
                None => false,
            }
        }
        Change::CreateLink => {
            if p.links.iter().filter(|l| l.from_activity).count() >= MAX_ACTIVITY_LINKS {
                return false;
            }
            // Every node with a free port, with its first free adapter.
            let free: Vec<(usize, u64)> = (0..p.nodes.len())
                .filter_map(|j| {
                    let n = &p.nodes[j];
                    (0..n.adapters() as u64).find(|&a| !p.port_in_use(&n.id, a, 0)).map(|a| (j, a))
                })
                .collect();
            let Some(a) = pick(model, &free) else {
                return false;
            };
            let others: Vec<(usize, u64)> = free.into_iter().filter(|(j, _)| *j != a.0).collect();
            let Some(b) = pick(model, &others) else {
                return false;
            };
            let p = &model.projects[i];
            let ends = json!({"nodes": [
                {"node_id": p.nodes[a.0].id, "adapter_number": a.1, "port_number": 0},
                {"node_id": p.nodes[b.0].id, "adapter_number": b.1, "port_number": 0},
            ]});
            model.create_link(&pid, &obj(ends), true).is_ok()
        }
        Change::DeleteLink => {
            let c: Vec<usize> = (0..p.links.len()).filter(|&k| p.links[k].from_activity).collect();
            match pick(model, &c) {
                Some(k) => {
                    let lid = model.projects[i].links[k].id.clone();
                    model.delete_link(&pid, &lid).is_ok()
                }
                None => false,
            }
        }
    }
}

/// Runs `step` `rate` times per second on the current actix arbiter until aborted.
pub async fn run(shared: Shared, rate: f64) {
    let period = Duration::from_secs_f64((1.0 / rate).clamp(0.001, 3600.0));
    let mut every = actix_rt::time::interval_at(actix_rt::time::Instant::now() + period, period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let mut world = lock(&shared);
        if let Some(change) = step(&mut world.model, Instant::now()) {
            tracing::debug!(?change, "Stand-in activity.");
        }
        world.flush();
    }
}
