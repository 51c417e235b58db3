use std::fmt;

/// A tier's own view of its state, as [`Tier::health`](crate::Tier::health) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Serving normally.
    Healthy,
    /// Serving, but impaired (slow, a replica down, near its size bound, purges falling behind).
    Degraded(String),
    /// Not serving: reads answer degraded misses and writes fail.
    Down(String),
}

impl Health {
    /// Whether the tier serves requests at all (healthy or degraded).
    pub fn is_serving(&self) -> bool {
        !matches!(self, Health::Down(_))
    }

    /// A short lowercase label: `healthy`, `degraded` or `down`.
    pub fn label(&self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded(_) => "degraded",
            Health::Down(_) => "down",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Health::Healthy => f.write_str("healthy"),
            Health::Degraded(reason) => write!(f, "degraded: {reason}"),
            Health::Down(reason) => write!(f, "down: {reason}"),
        }
    }
}
