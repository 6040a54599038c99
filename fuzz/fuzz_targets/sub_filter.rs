//! Fuzzes `SubscriptionFilter` (subscription names and globs → filter, what a WebSocket
//! `subscribe` builds): the input is split into names at newlines, the last line is an
//! event type to match. Beyond not panicking, a filter built from one glob must match
//! exactly what a plain backtracking `*` matcher says, for the fuzzed type and for every
//! built-in type (the built-in ones go through the precomputed bit mask); removing every
//! name leaves an empty filter; a refused list leaves nothing half-added.
#![no_main]

use gns3_central::actors::dispatcher::filter::MAX_NAMES;
use gns3_central::actors::dispatcher::SubscriptionFilter;
use gns3_central::actors::events::EventKind;
use libfuzzer_sys::fuzz_target;

/// Reference: `*` matches any run of characters (dots included), everything else itself.
/// Dynamic programming over (pattern, text) prefixes: no backtracking blow-up.
fn glob(p: &[u8], s: &[u8]) -> bool {
    // m[j]: the pattern so far matches s[..j].
    let mut m = vec![false; s.len() + 1];
    m[0] = true;
    for &c in p {
        if c == b'*' {
            for j in 1..=s.len() {
                m[j] = m[j] || m[j - 1];
            }
        } else {
            for j in (1..=s.len()).rev() {
                m[j] = m[j - 1] && s[j - 1] == c;
            }
            m[0] = false;
        }
    }
    m[s.len()]
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines: Vec<&str> = text.split('\n').collect();
    let Some(kind_str) = lines.pop() else { return };
    if lines.len() > 4 * MAX_NAMES + 8 {
        return;
    }
    let kind = EventKind::parse(kind_str);
    let Ok(mut f) = SubscriptionFilter::new(lines.iter(), []) else {
        let mut g = SubscriptionFilter::new(["node_status"], []).expect("a group name is valid");
        let before = g.clone();
        assert!(g.add(lines.iter()).is_err(), "a list refused by new is accepted by add");
        assert_eq!(g, before, "a refused add changed the filter");
        return;
    };
    assert!(f.names().len() <= MAX_NAMES);
    let _ = f.matches(kind, kind_str, None);
    // One glob alone (not a group, a built-in type or `*`, which mean other things):
    if let [name] = lines.as_slice() {
        let name = name.trim();
        let special = name == "*" || EventKind::parse(name).is_some();
        if name.contains('*') && !special {
            let p = name.as_bytes();
            if kind.is_none() {
                assert_eq!(f.matches(None, kind_str, None), glob(p, kind_str.as_bytes()), "{name} vs {kind_str}");
            }
            for k in EventKind::ALL {
                assert_eq!(f.matches(Some(k), k.as_str(), None), glob(p, k.as_str().as_bytes()), "{name} vs {k:?}");
            }
        }
    }
    let names: Vec<String> = f.names().to_vec();
    f.remove(names.iter());
    assert!(f.is_empty(), "names left after removing them all: {:?}", f.names());
});
