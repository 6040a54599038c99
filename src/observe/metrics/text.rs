//! The Prometheus text exposition format (version 0.0.4), written by hand: one `# HELP`
//! and `# TYPE` per family, then its samples. Label values are escaped (`\`, `"`,
//! newline); a family is written only once, so the caller groups samples by family.

use gns3_central_actors::metrics::HistogramSnapshot;
use std::fmt::Write;

/// The content type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Builds one exposition.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

/// Label pairs of one sample.
pub type Labels<'a> = &'a [(&'a str, &'a str)];

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family: its help line and type.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {}", kind.as_str());
        self
    }

    /// One sample of the family just started.
    pub fn sample(&mut self, name: &str, labels: Labels<'_>, value: f64) -> &mut Self {
        self.out.push_str(name);
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", number(value));
        self
    }

    /// The `_bucket`, `_sum` and `_count` samples of a histogram.
    pub fn histogram(&mut self, name: &str, labels: Labels<'_>, h: &HistogramSnapshot) -> &mut Self {
        for (bound, count) in h.bounds.iter().zip(&h.cumulative) {
            let _ = write!(self.out, "{name}_bucket");
            write_labels(&mut self.out, labels, Some(&number(*bound)));
            let _ = writeln!(self.out, " {count}");
        }
        let _ = write!(self.out, "{name}_bucket");
        write_labels(&mut self.out, labels, Some("+Inf"));
        let _ = writeln!(self.out, " {}", h.count);
        let _ = write!(self.out, "{name}_sum");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", number(h.sum));
        let _ = write!(self.out, "{name}_count");
        write_labels(&mut self.out, labels, None);
        let _ = writeln!(self.out, " {}", h.count);
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn write_labels(out: &mut String, labels: Labels<'_>, le: Option<&str>) {
    if labels.is_empty() && le.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    let all = labels.iter().copied().chain(le.map(|v| ("le", v)));
    for (k, v) in all {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push('}');
}

/// A sample value as Prometheus reads it (`+Inf`, `NaN`, integers without a fraction).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_families_escaped_labels_and_histograms() {
        let mut e = Exposition::new();
        e.family("x_total", Kind::Counter, "An x.\nTwo lines.").sample("x_total", &[("path", "a\"b\\c\nd")], 3.0);
        let h = HistogramSnapshot { bounds: vec![0.5, 1.0], cumulative: vec![1, 2], sum: 1.25, count: 3 };
        e.family("d_seconds", Kind::Histogram, "D.").histogram("d_seconds", &[("k", "v")], &h);
        e.family("g", Kind::Gauge, "G.").sample("g", &[], 0.25);
        let text = e.finish();
        assert!(text.contains("# HELP x_total An x.\\nTwo lines.\n# TYPE x_total counter\n"), "{text}");
        assert!(text.contains("x_total{path=\"a\\\"b\\\\c\\nd\"} 3\n"), "{text}");
        assert!(text.contains("d_seconds_bucket{k=\"v\",le=\"0.5\"} 1\n"), "{text}");
        assert!(text.contains("d_seconds_bucket{k=\"v\",le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("d_seconds_sum{k=\"v\"} 1.25\nd_seconds_count{k=\"v\"} 3\n"), "{text}");
        assert!(text.ends_with("g 0.25\n"), "{text}");
    }
}
