//! `Priority`: every event's class, CRITICAL > HIGH > NORMAL > LOW. It is a field of the
//! envelope (`Event::priority`), so it belongs to the event model; the dispatcher's
//! queues (`crate::dispatcher::queue`) order and shed by it.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Priority {
    Critical = 0,
    High = 1,
    Normal = 2,
    Low = 3,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::Critical, Priority::High, Priority::Normal, Priority::Low];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "CRITICAL",
            Priority::High => "HIGH",
            Priority::Normal => "NORMAL",
            Priority::Low => "LOW",
        }
    }

    /// May items of this class be dropped to make room?
    pub fn sheddable(self) -> bool {
        matches!(self, Priority::Normal | Priority::Low)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "CRITICAL" => Ok(Priority::Critical),
            "HIGH" => Ok(Priority::High),
            "NORMAL" => Ok(Priority::Normal),
            "LOW" => Ok(Priority::Low),
            _ => Err(format!("unknown priority '{s}' (expected CRITICAL, HIGH, NORMAL or LOW)")),
        }
    }
}
