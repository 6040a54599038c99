//! OpenAPI links: how an answer's ids feed the next call (a registered module's `name` to
//! its read and delete, a project list's `project_id` to the project's reads, a node list's
//! `node_id` to the node). A generated client or a reader of `/api/docs/` sees the chains;
//! Schemathesis' stateful phase follows exactly these (scripts/schemathesis).

use serde_json::{json, Value};
use utoipa::openapi::link::Link;
use utoipa::openapi::{OpenApi, RefOr};
use utoipa::Modify;

/// The `Modify` that adds them.
pub struct Links;

/// (path, method, status, link name, target operationId, parameters).
type Spec = (&'static str, &'static str, &'static str, &'static str, &'static str, Value);

fn specs() -> Vec<Spec> {
    let name = json!({"name": "$response.body#/name"});
    let first_project = |extra: Value| {
        let mut p = json!({"server": "$request.path.server", "project_id": "$response.body#/0/project_id"});
        if let (Value::Object(p), Value::Object(e)) = (&mut p, extra) {
            p.extend(e);
        }
        p
    };
    let in_project = json!({"server": "$request.path.server", "project_id": "$request.path.project_id"});
    vec![
        ("/api/v2/modules", "post", "201", "GetModule", "get_one", name.clone()),
        ("/api/v2/modules", "post", "201", "DeleteModule", "remove", name.clone()),
        ("/api/common/api/gns3-central/create_module_interface/", "post", "201", "GetModule", "get_one", name.clone()),
        ("/api/common/api/gns3-central/create_module_interface/", "post", "201", "DeleteModule", "remove", name),
        ("/api/v2/servers/{server}/projects", "get", "200", "GetProject", "get_project", first_project(json!({}))),
        ("/api/v2/servers/{server}/projects", "get", "200", "ListNodes", "list_nodes", first_project(json!({}))),
        ("/api/v2/servers/{server}/projects", "get", "200", "ListLinks", "list_links", first_project(json!({}))),
        (
            "/api/v2/servers/{server}/projects",
            "get",
            "200",
            "GetTopology",
            "project_topology",
            first_project(json!({})),
        ),
        ("/api/v2/servers/{server}/projects/{project_id}/nodes", "get", "200", "GetNode", "get_node", {
            let mut p = in_project;
            p["node_id"] = json!("$response.body#/0/node_id");
            p
        }),
    ]
}

impl Modify for Links {
    fn modify(&self, openapi: &mut OpenApi) {
        for (path, method, status, name, target, parameters) in specs() {
            let Some(item) = openapi.paths.paths.get_mut(path) else { continue };
            let op = match method {
                "get" => item.get.as_mut(),
                "post" => item.post.as_mut(),
                _ => None,
            };
            let Some(RefOr::T(res)) = op.and_then(|op| op.responses.responses.get_mut(status)) else { continue };
            let mut link = Link::default();
            link.operation_id = target.to_owned();
            if let Value::Object(map) = parameters {
                link.parameters = map.into_iter().collect();
            }
            res.links.insert(name.to_owned(), link.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ApiDoc;
    use utoipa::OpenApi;

    #[test]
    fn every_link_names_a_documented_operation_and_its_parameters() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut ops = std::collections::BTreeMap::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                if let Some(id) = op["operationId"].as_str() {
                    let params: Vec<String> = op["parameters"]
                        .as_array()
                        .map(|ps| ps.iter().filter_map(|p| p["name"].as_str().map(str::to_owned)).collect())
                        .unwrap_or_default();
                    ops.insert(id.to_owned(), params);
                }
            }
        }
        let mut seen = 0;
        for (path, method, status, name, target, parameters) in super::specs() {
            let link = &doc["paths"][path][method]["responses"][status]["links"][name];
            assert_eq!(link["operationId"], target, "{method} {path} {status} has no link {name}");
            let params = ops.get(target).unwrap_or_else(|| panic!("no operation {target}"));
            for p in parameters.as_object().unwrap().keys() {
                assert!(params.contains(p), "{target} takes no parameter {p}");
            }
            seen += 1;
        }
        assert!(seen >= 9);
    }
}
