//! Request-body checks with gns3-server 2.2's JSON schemas (the parts the stand-in routes
//! take: project create/update, node create/update, link create/update) and its error
//! texts, which come from Python's `jsonschema` and show the body as a Python literal
//! (`{'name': 'X'}`), hence `py_repr`. Like jsonschema's `best_match`, an error on the
//! body itself (type, unexpected key, missing key) wins over an error inside one value.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Str,
    Int,
    Bool,
    Obj,
    Arr,
    Null,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Str => "string",
            Ty::Int => "integer",
            Ty::Bool => "boolean",
            Ty::Obj => "object",
            Ty::Arr => "array",
            Ty::Null => "null",
        }
    }
    fn accepts(self, v: &Value) -> bool {
        match self {
            Ty::Str => v.is_string(),
            Ty::Int => v.is_i64() || v.is_u64(),
            Ty::Bool => v.is_boolean(),
            Ty::Obj => v.is_object(),
            Ty::Arr => v.is_array(),
            Ty::Null => v.is_null(),
        }
    }
}

/// One property of an object schema.
pub struct Prop {
    name: &'static str,
    types: &'static [Ty],
    min_len: usize,
    uuid: bool,
    one_of: Option<&'static [Option<&'static str>]>,
    items: Option<&'static Schema>,
}

const fn prop(name: &'static str, types: &'static [Ty]) -> Prop {
    Prop { name, types, min_len: 0, uuid: false, one_of: None, items: None }
}
const fn non_empty(name: &'static str, types: &'static [Ty]) -> Prop {
    Prop { min_len: 1, ..prop(name, types) }
}
const fn uuid(name: &'static str, types: &'static [Ty]) -> Prop {
    Prop { uuid: true, ..prop(name, types) }
}
const fn one_of(name: &'static str, values: &'static [Option<&'static str>]) -> Prop {
    Prop { one_of: Some(values), ..prop(name, &[]) }
}

/// An object schema with `additionalProperties: false`: the properties of `props` and `more`.
pub struct Schema {
    props: &'static [Prop],
    more: &'static [Prop],
    required: &'static [&'static str],
}

impl Schema {
    fn all(&self) -> impl Iterator<Item = &Prop> {
        self.props.iter().chain(self.more)
    }
}

use Ty::*;
const UUID_PATTERN: &str = "^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$";

const PROJECT_SETTINGS: [Prop; 14] = [
    prop("auto_close", &[Bool]),
    prop("auto_open", &[Bool]),
    prop("auto_start", &[Bool]),
    prop("scene_height", &[Int]),
    prop("scene_width", &[Int]),
    prop("zoom", &[Int]),
    prop("show_layers", &[Bool]),
    prop("snap_to_grid", &[Bool]),
    prop("show_grid", &[Bool]),
    prop("grid_size", &[Int]),
    prop("drawing_grid_size", &[Int]),
    prop("show_interface_labels", &[Bool]),
    prop("supplier", &[Obj, Null]),
    prop("variables", &[Arr, Null]),
];
pub static PROJECT_CREATE: Schema = Schema {
    props: &[
        non_empty("name", &[Str, Null]),
        non_empty("path", &[Str, Null]),
        Prop { min_len: 36, ..uuid("project_id", &[Str, Null]) },
    ],
    more: &PROJECT_SETTINGS,
    required: &["name"],
};
pub static PROJECT_UPDATE: Schema = Schema {
    props: &[non_empty("name", &[Str, Null]), prop("path", &[Str, Null])],
    more: &PROJECT_SETTINGS,
    required: &[],
};

const NODE_TYPE_VALUES: [Option<&str>; 14] = [
    Some("cloud"),
    Some("nat"),
    Some("ethernet_hub"),
    Some("ethernet_switch"),
    Some("frame_relay_switch"),
    Some("atm_switch"),
    Some("docker"),
    Some("dynamips"),
    Some("vpcs"),
    Some("traceng"),
    Some("virtualbox"),
    Some("vmware"),
    Some("iou"),
    Some("qemu"),
];
const NODE_PROPS: &[Prop] = &[
    prop("compute_id", &[Str]),
    uuid("project_id", &[Str]),
    uuid("node_id", &[Str]),
    uuid("template_id", &[Null, Str]),
    one_of("node_type", &NODE_TYPE_VALUES),
    prop("node_directory", &[Null, Str]),
    prop("command_line", &[Null, Str]),
    non_empty("name", &[Str]),
    prop("console", &[Int, Null]),
    non_empty("console_host", &[Str]),
    one_of(
        "console_type",
        &[
            Some("vnc"),
            Some("telnet"),
            Some("http"),
            Some("https"),
            Some("spice"),
            Some("spice+agent"),
            Some("none"),
            None,
        ],
    ),
    prop("console_auto_start", &[Bool]),
    prop("properties", &[Obj]),
    one_of("status", &[Some("stopped"), Some("started"), Some("suspended")]),
    prop("label", &[Obj]),
    non_empty("symbol", &[Str, Null]),
    prop("width", &[Int]),
    prop("height", &[Int]),
    prop("x", &[Int]),
    prop("y", &[Int]),
    prop("z", &[Int]),
    prop("locked", &[Bool]),
    prop("port_name_format", &[Str]),
    prop("port_segment_size", &[Int]),
    prop("first_port_name", &[Str, Null]),
    prop("custom_adapters", &[Arr]),
    prop("ports", &[Arr]),
];
pub static NODE_CREATE: Schema =
    Schema { props: NODE_PROPS, more: &[], required: &["name", "node_type", "compute_id"] };
pub static NODE_UPDATE: Schema = Schema { props: NODE_PROPS, more: &[], required: &[] };

static LINK_END: Schema = Schema {
    props: &[
        uuid("node_id", &[Str]),
        prop("adapter_number", &[Int]),
        prop("port_number", &[Int]),
        prop("label", &[Obj]),
    ],
    more: &[],
    required: &["node_id", "adapter_number", "port_number"],
};
pub static LINK: Schema = Schema {
    props: &[
        uuid("link_id", &[Str]),
        uuid("project_id", &[Str]),
        Prop { items: Some(&LINK_END), ..prop("nodes", &[Arr]) },
        prop("suspend", &[Bool]),
        prop("link_style", &[Obj]),
        prop("filters", &[Obj]),
        prop("capturing", &[Bool]),
        prop("capture_file_name", &[Str, Null]),
        prop("capture_file_path", &[Str, Null]),
        prop("capture_compute_id", &[Str, Null]),
        one_of("link_type", &[Some("ethernet"), Some("serial")]),
    ],
    more: &[],
    required: &[],
};

/// Checks `v` against `schema`; the error is jsonschema's message.
pub fn validate(schema: &Schema, v: &Value) -> Result<(), String> {
    let Some(obj) = v.as_object() else {
        return Err(format!("{} is not of type 'object'", py_repr(v)));
    };
    let unexpected: Vec<String> =
        obj.keys().filter(|k| !schema.all().any(|p| p.name == k.as_str())).map(|k| py_str(k)).collect();
    match unexpected.len() {
        0 => {}
        1 => return Err(format!("Additional properties are not allowed ({} was unexpected)", unexpected[0])),
        _ => return Err(format!("Additional properties are not allowed ({} were unexpected)", unexpected.join(", "))),
    }
    if let Some(missing) = schema.required.iter().find(|r| !obj.contains_key(**r)) {
        return Err(format!("{} is a required property", py_str(missing)));
    }
    for p in schema.all() {
        if let Some(value) = obj.get(p.name) {
            check_prop(p, value)?;
        }
    }
    Ok(())
}

fn check_prop(p: &Prop, v: &Value) -> Result<(), String> {
    if let Some(values) = p.one_of {
        if !values.iter().any(|allowed| allowed.map_or(v.is_null(), |a| v.as_str() == Some(a))) {
            let list: Vec<String> = values.iter().map(|a| a.map_or("None".to_owned(), py_str)).collect();
            return Err(format!("{} is not one of [{}]", py_repr(v), list.join(", ")));
        }
        return Ok(());
    }
    if !p.types.iter().any(|t| t.accepts(v)) {
        let names: Vec<String> = p.types.iter().map(|t| format!("'{}'", t.name())).collect();
        return Err(format!("{} is not of type {}", py_repr(v), names.join(", ")));
    }
    if let Some(s) = v.as_str() {
        let len = s.chars().count();
        if len < p.min_len {
            return Err(if p.min_len == 1 {
                format!("{} should be non-empty", py_str(s))
            } else {
                format!("{} is too short", py_str(s))
            });
        }
        if p.uuid && len > 36 {
            return Err(format!("{} is too long", py_str(s)));
        }
        if p.uuid && !is_uuid(s) {
            return Err(format!("{} does not match {}", py_str(s), py_str(UUID_PATTERN)));
        }
    }
    if let (Some(items), Some(list)) = (p.items, v.as_array()) {
        for item in list {
            validate(items, item)?;
        }
    }
    Ok(())
}

/// `8-4-4-4-12` hex digits, either case (gns3's pattern).
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A JSON value as Python's `repr` of the parsed value shows it.
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => py_str(s),
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => {
            format!(
                "{{{}}}",
                m.iter().map(|(k, v)| format!("{}: {}", py_str(k), py_repr(v))).collect::<Vec<_>>().join(", ")
            )
        }
    }
}

/// Python's `repr` of a str: single quotes unless the text has `'` and no `"`.
pub fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_read_like_python_jsonschema() {
        assert_eq!(validate(&NODE_CREATE, &json!({"name": "X"})).unwrap_err(), "'node_type' is a required property");
        assert_eq!(
            validate(&NODE_CREATE, &json!({"name": 5, "node_type": "qemu", "compute_id": "local"})).unwrap_err(),
            "5 is not of type 'string'"
        );
        let bad_type = validate(&NODE_CREATE, &json!({"name": "X", "node_type": "bogus", "compute_id": "local"}));
        assert!(bad_type.unwrap_err().starts_with("'bogus' is not one of ['cloud', 'nat', "));
        assert_eq!(validate(&PROJECT_CREATE, &json!([])).unwrap_err(), "[] is not of type 'object'");
        assert_eq!(validate(&PROJECT_CREATE, &json!({"name": ""})).unwrap_err(), "'' should be non-empty");
        assert_eq!(validate(&PROJECT_UPDATE, &json!({"name": 5})).unwrap_err(), "5 is not of type 'string', 'null'");
        assert_eq!(
            validate(&PROJECT_UPDATE, &json!({"bogus": 5})).unwrap_err(),
            "Additional properties are not allowed ('bogus' was unexpected)"
        );
        assert_eq!(
            validate(&LINK, &json!({"nodes": [{"node_id": "x"}]})).unwrap_err(),
            "'adapter_number' is a required property"
        );
        assert!(validate(&LINK, &json!({})).is_ok());
        assert!(validate(&PROJECT_CREATE, &json!({"name": "p", "project_id": "11111111-2222-3333-4444-555555555555"}))
            .is_ok());
    }

    #[test]
    fn python_repr_of_bodies() {
        assert_eq!(
            py_repr(&json!({"a": [true, null, 1.5], "b": "x\"y'z"})),
            r#"{'a': [True, None, 1.5], 'b': 'x"y\'z'}"#
        );
        assert_eq!(py_str("it's"), "\"it's\"");
    }
}
