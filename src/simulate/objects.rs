//! The JSON shapes the stand-in sends, one function per shape, with the key sets recorded
//! from a real gns3-server 2.2.61 (controller objects, the `.gns3` project-file form that a
//! closed project lists, and the flat compute form of a deleted qemu node). Values that
//! only make sense on a real host (paths, command lines) are plausible fakes.

use serde_json::{json, Map, Value};

use super::state::{Link, Node, Project};

/// The server version the stand-in claims.
pub const VERSION: &str = "2.2.61";
/// Where project directories would live on a real server (only shown in `path`).
pub const PROJECTS_DIR: &str = "/home/gns3/GNS3/projects";
/// The link label style gns3-server applies when none is given.
pub const LINK_LABEL_STYLE: &str =
    "font-family: TypeWriter;font-size: 10.0;font-weight: bold;fill: #000000;fill-opacity: 1.0;";
/// `capabilities.node_types` of the local compute, as reported by a real 2.2.61 on Linux.
const CAPABLE_NODE_TYPES: &[&str] = &[
    "cloud",
    "ethernet_hub",
    "ethernet_switch",
    "nat",
    "vpcs",
    "virtualbox",
    "dynamips",
    "frame_relay_switch",
    "atm_switch",
    "qemu",
    "vmware",
    "traceng",
    "docker",
    "iou",
];

/// The project settings a client may set, with their defaults (14 of the 19 project keys).
pub fn default_project_settings() -> Map<String, Value> {
    let v = json!({
        "auto_close": true, "auto_open": false, "auto_start": false, "drawing_grid_size": 25,
        "grid_size": 75, "scene_height": 1000, "scene_width": 2000, "show_grid": false,
        "show_interface_labels": false, "show_layers": false, "snap_to_grid": false,
        "supplier": null, "variables": null, "zoom": 100,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The qemu `properties` of a new node (39 keys); `mac` is the base MAC address.
pub fn default_qemu_properties(mac: &str) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in [
        ("adapter_type", json!("e1000")),
        ("adapters", json!(1)),
        ("bios_image", json!("")),
        ("bios_image_md5sum", Value::Null),
        ("boot_priority", json!("c")),
        ("cdrom_image", json!("")),
        ("cdrom_image_md5sum", Value::Null),
        ("cpu_throttling", json!(0)),
        ("cpus", json!(1)),
        ("create_config_disk", json!(false)),
        ("initrd", json!("")),
        ("initrd_md5sum", Value::Null),
        ("kernel_command_line", json!("")),
        ("kernel_image", json!("")),
        ("kernel_image_md5sum", Value::Null),
        ("legacy_networking", json!(false)),
        ("mac_address", json!(mac)),
        ("on_close", json!("power_off")),
        ("options", json!("")),
        ("platform", json!("x86_64")),
        ("process_priority", json!("low")),
        ("qemu_path", json!("/usr/bin/qemu-system-x86_64")),
        ("ram", json!(256)),
        ("replicate_network_connection_state", json!(true)),
        ("tpm", json!(false)),
        ("uefi", json!(false)),
        ("usage", json!("")),
    ] {
        m.insert(k.to_owned(), v);
    }
    for disk in ["hda", "hdb", "hdc", "hdd"] {
        m.insert(format!("{disk}_disk_image"), json!(""));
        m.insert(format!("{disk}_disk_image_md5sum"), Value::Null);
        m.insert(format!("{disk}_disk_interface"), json!("none"));
    }
    m
}

/// The base MAC address gns3-server derives from a node id: `0c:` + id hex digits 2..8.
pub fn base_mac(node_id: &str) -> String {
    let hex: Vec<char> = node_id.chars().filter(char::is_ascii_hexdigit).skip(2).take(6).collect();
    let pair = |i: usize| hex.get(i..i + 2).map(|c| c.iter().collect::<String>()).unwrap_or_else(|| "00".into());
    format!("0c:{}:{}:{}:00:00", pair(0), pair(2), pair(4))
}

/// The MAC address of adapter `i`: the base with its last byte replaced.
fn adapter_mac(base: &str, i: usize) -> String {
    let prefix = base.get(..base.len().saturating_sub(2)).unwrap_or(base);
    format!("{prefix}{:02x}", i % 256)
}

/// The project object (19 keys; also the `project.*` notification payload).
pub fn project_json(p: &Project) -> Value {
    let mut m = p.settings.clone();
    m.insert("name".into(), json!(p.name));
    m.insert("project_id".into(), json!(p.id));
    m.insert("path".into(), json!(format!("{PROJECTS_DIR}/{}", p.id)));
    m.insert("filename".into(), json!(p.filename));
    m.insert("status".into(), json!(if p.opened { "opened" } else { "closed" }));
    Value::Object(m)
}

/// The ports list of a qemu node: one port per adapter.
fn ports_json(n: &Node) -> Value {
    let base = n.properties.get("mac_address").and_then(Value::as_str).unwrap_or("0c:00:00:00:00:00");
    let adapter_type = n.properties.get("adapter_type").cloned().unwrap_or_else(|| json!("e1000"));
    let ports: Vec<Value> = (0..n.adapters())
        .map(|i| {
            let name = match (&n.first_port_name, i) {
                (Value::String(first), 0) if !first.is_empty() => first.clone(),
                _ => n.port_name_format.replace("{0}", &i.to_string()).replace("{port0}", &i.to_string()),
            };
            json!({
                "adapter_number": i, "adapter_type": adapter_type, "data_link_types": {"Ethernet": "DLT_EN10MB"},
                "link_type": "ethernet", "mac_address": adapter_mac(base, i), "name": name, "port_number": 0,
                "short_name": format!("e{i}"),
            })
        })
        .collect();
    Value::Array(ports)
}

/// The keys shared by the controller form and the project-file form of a node.
fn node_common(n: &Node) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in [
        ("compute_id", json!(n.compute_id)),
        ("console", json!(n.console)),
        ("console_auto_start", json!(n.console_auto_start)),
        ("console_type", n.console_type.clone()),
        ("custom_adapters", n.custom_adapters.clone()),
        ("first_port_name", n.first_port_name.clone()),
        ("height", json!(n.height)),
        ("label", n.label.clone()),
        ("locked", json!(n.locked)),
        ("name", json!(n.name)),
        ("node_id", json!(n.id)),
        ("node_type", json!(n.node_type)),
        ("port_name_format", json!(n.port_name_format)),
        ("port_segment_size", json!(n.port_segment_size)),
        ("properties", Value::Object(n.properties.clone())),
        ("symbol", n.symbol.clone()),
        ("template_id", n.template_id.clone()),
        ("width", json!(n.width)),
        ("x", json!(n.x)),
        ("y", json!(n.y)),
        ("z", json!(n.z)),
    ] {
        m.insert(k.to_owned(), v);
    }
    m
}

fn node_directory(project_id: &str, n: &Node) -> String {
    format!("{PROJECTS_DIR}/{project_id}/project-files/qemu/{}", n.id)
}

/// The controller node object (27 keys): REST replies and `node.created/updated/deleted`.
pub fn node_json(project_id: &str, n: &Node) -> Value {
    let mut m = node_common(n);
    m.insert("command_line".into(), json!(n.command_line));
    m.insert("console_host".into(), json!("127.0.0.1"));
    m.insert("node_directory".into(), json!(node_directory(project_id, n)));
    m.insert("ports".into(), ports_json(n));
    m.insert("project_id".into(), json!(project_id));
    m.insert("status".into(), json!(n.status.as_str()));
    Value::Object(m)
}

/// A node as a closed project lists it: the `.gns3` file form (21 keys, no status, no ports).
pub fn node_closed_json(n: &Node) -> Value {
    Value::Object(node_common(n))
}

/// The second `node.deleted`, as the compute sends it: flat qemu settings, console gone.
pub fn node_compute_json(project_id: &str, n: &Node) -> Value {
    let mut m = n.properties.clone();
    m.insert("command_line".into(), json!(n.command_line));
    m.insert("console".into(), Value::Null);
    m.insert("console_type".into(), n.console_type.clone());
    m.insert("name".into(), json!(n.name));
    m.insert("node_directory".into(), json!(node_directory(project_id, n)));
    m.insert("node_id".into(), json!(n.id));
    m.insert("project_id".into(), json!(project_id));
    m.insert("status".into(), json!("stopped"));
    Value::Object(m)
}

/// The link object (11 keys).
pub fn link_json(project_id: &str, l: &Link) -> Value {
    json!({
        "capture_compute_id": null, "capture_file_name": null, "capture_file_path": null,
        "capturing": false, "filters": l.filters, "link_id": l.id, "link_style": l.link_style,
        "link_type": "ethernet", "nodes": link_ends(l), "project_id": project_id, "suspend": l.suspend,
    })
}

/// A link as a closed project lists it (5 keys).
pub fn link_closed_json(l: &Link) -> Value {
    json!({"filters": l.filters, "link_id": l.id, "link_style": l.link_style, "nodes": link_ends(l), "suspend": l.suspend})
}

fn link_ends(l: &Link) -> Value {
    Value::Array(
        l.ends
            .iter()
            .map(
                |e| json!({"adapter_number": e.adapter, "label": e.label, "node_id": e.node_id, "port_number": e.port}),
            )
            .collect(),
    )
}

/// The default label of a link end: `adapter/port` in gns3's style.
pub fn link_label(adapter: u64, port: u64) -> Value {
    json!({"style": LINK_LABEL_STYLE, "text": format!("{adapter}/{port}")})
}

/// The local compute (11 keys), as `/computes` and `compute.updated` show it once connected.
pub fn compute_json(port: u16, cpu: f64, memory: f64) -> Value {
    json!({
        "capabilities": {"node_types": CAPABLE_NODE_TYPES, "platform": "linux", "version": VERSION},
        "compute_id": "local", "connected": true, "cpu_usage_percent": cpu, "host": "127.0.0.1",
        "last_error": null, "memory_usage_percent": memory, "name": "vm", "port": port,
        "protocol": "http", "user": null,
    })
}

/// The `ping` event payload.
pub fn ping_json(cpu: f64, memory: f64) -> Value {
    json!({"cpu_usage_percent": cpu, "memory_usage_percent": memory})
}

/// A node's qemu command line once started (shown in `command_line`, like the real server).
pub fn command_line(n: &Node) -> String {
    let p = |k: &str| n.properties.get(k).map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()));
    let qemu = p("qemu_path").unwrap_or_default();
    let base = n.properties.get("mac_address").and_then(Value::as_str).unwrap_or("0c:00:00:00:00:00");
    let adapter_type = p("adapter_type").unwrap_or_else(|| "e1000".into());
    let mut line = format!(
        "{qemu} -name {} -m {}M -smp cpus={},sockets=1 -boot order=c -uuid {} -serial telnet:127.0.0.1:{},server,nowait -net none",
        n.name,
        p("ram").unwrap_or_default(),
        p("cpus").unwrap_or_default(),
        n.id,
        n.console.unwrap_or(0),
    );
    for i in 0..n.adapters() {
        let udp = 10000 + 2 * i;
        line.push_str(&format!(
            " -device {adapter_type},mac={},netdev=gns3-{i} -netdev socket,id=gns3-{i},udp=127.0.0.1:{},localaddr=127.0.0.1:{udp}",
            adapter_mac(base, i),
            udp + 1
        ));
    }
    line.push_str(" -display none");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_follow_the_node_id_like_gns3() {
        let base = base_mac("d0e5a1a8-62a8-4a81-9c32-03f586f3b2cf");
        assert_eq!(base, "0c:e5:a1:a8:00:00");
        assert_eq!(adapter_mac(&base, 1), "0c:e5:a1:a8:00:01");
        assert_eq!(base_mac("x"), "0c:00:00:00:00:00");
    }

    #[test]
    fn qemu_properties_have_the_real_key_count() {
        assert_eq!(default_qemu_properties("0c:00:00:00:00:00").len(), 39);
        assert_eq!(default_project_settings().len(), 14);
    }
}
