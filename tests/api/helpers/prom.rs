//! A strict parser of the Prometheus text format (0.0.4), for the `/metrics` tests: every
//! line must be a `# HELP`, a `# TYPE` or a sample of the family last declared; names and
//! labels must be well formed; no series twice; a histogram's buckets must be cumulative
//! and end with `+Inf` equal to its `_count`; counters must not be negative. Anything
//! else is a panic naming the line.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Default)]
pub struct Scrape {
    /// Family name → type.
    pub families: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// The value of the one sample with `name` and exactly these labels (others: any).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
            .collect();
        assert!(found.len() <= 1, "{name} {labels:?} matches {} samples", found.len());
        found.first().map(|s| s.value)
    }

    /// The sum over every sample of `name` whose labels include these.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
            .map(|s| s.value)
            .sum()
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_value(v: &str, line: &str) -> f64 {
    match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => v.parse().unwrap_or_else(|_| panic!("bad value '{v}' in: {line}")),
    }
}

/// `{k="v",...}` → labels, and what follows.
fn parse_labels<'a>(s: &'a str, line: &str) -> (BTreeMap<String, String>, &'a str) {
    let mut labels = BTreeMap::new();
    let Some(mut rest) = s.strip_prefix('{') else { return (labels, s) };
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return (labels, r);
        }
        let eq = rest.find('=').unwrap_or_else(|| panic!("label without '=' in: {line}"));
        let key = &rest[..eq];
        assert!(valid_name(key) && !key.contains(':'), "bad label name '{key}' in: {line}");
        rest = rest[eq + 1..].strip_prefix('"').unwrap_or_else(|| panic!("unquoted label value in: {line}"));
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => panic!("bad escape {other:?} in: {line}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in: {line}"),
            }
        };
        assert!(labels.insert(key.to_owned(), value).is_none(), "label '{key}' twice in: {line}");
        rest = &rest[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

pub fn parse(text: &str) -> Scrape {
    assert!(text.ends_with('\n'), "the exposition must end with a newline");
    let mut scrape = Scrape::default();
    let mut current: Option<(String, String)> = None;
    let mut helped = BTreeSet::new();
    let mut series = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            assert!(valid_name(name), "bad HELP line: {line}");
            assert!(helped.insert(name.to_owned()), "HELP twice for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (name, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            assert!(valid_name(name) && parts.next().is_none(), "bad TYPE line: {line}");
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "bad type: {line}");
            assert!(scrape.families.insert(name.to_owned(), kind.to_owned()).is_none(), "TYPE twice for {name}");
            current = Some((name.to_owned(), kind.to_owned()));
            continue;
        }
        assert!(!line.starts_with('#') && !line.trim().is_empty(), "unexpected line: '{line}'");
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("sample without value: {line}"));
        let name = &line[..name_end];
        assert!(valid_name(name), "bad metric name in: {line}");
        let (labels, rest) = parse_labels(&line[name_end..], line);
        let value = rest.strip_prefix(' ').unwrap_or_else(|| panic!("no space before the value: {line}"));
        assert!(!value.contains(' '), "timestamps are not expected: {line}");
        let value = parse_value(value, line);
        let (family, kind) = current.as_ref().unwrap_or_else(|| panic!("sample before any TYPE: {line}"));
        let ok = match kind.as_str() {
            "histogram" => [format!("{family}_bucket"), format!("{family}_sum"), format!("{family}_count")]
                .contains(&name.to_owned()),
            _ => name == family,
        };
        assert!(ok, "sample {name} does not belong to family {family} ({kind})");
        if kind == "counter" {
            assert!(value >= 0.0, "negative counter: {line}");
        }
        let key = format!("{name}{labels:?}");
        assert!(series.insert(key), "series twice: {line}");
        scrape.samples.push(Sample { name: name.to_owned(), labels, value });
    }
    check_histograms(&scrape);
    scrape
}

fn check_histograms(scrape: &Scrape) {
    for (family, kind) in &scrape.families {
        if kind != "histogram" {
            continue;
        }
        // Group the buckets by their labels without `le`.
        let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for s in scrape.samples.iter().filter(|s| s.name == format!("{family}_bucket")) {
            let le = s.labels.get("le").unwrap_or_else(|| panic!("bucket without le: {s:?}"));
            let mut rest = s.labels.clone();
            rest.remove("le");
            groups.entry(format!("{rest:?}")).or_default().push((parse_value(le, le), s.value));
        }
        for (labels, buckets) in groups {
            assert!(
                buckets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                "{family}{labels}: buckets not cumulative: {buckets:?}"
            );
            let last = buckets.last().expect("at least one bucket");
            assert!(last.0.is_infinite(), "{family}{labels}: no +Inf bucket");
            let count = scrape
                .samples
                .iter()
                .find(|s| {
                    s.name == format!("{family}_count") && {
                        let l = format!("{:?}", s.labels);
                        l == labels
                    }
                })
                .unwrap_or_else(|| panic!("{family}{labels}: no _count"));
            assert_eq!(count.value, last.1, "{family}{labels}: +Inf bucket != _count");
        }
    }
}
