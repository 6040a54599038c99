//! Exponential backoff with jitter (to be written).
