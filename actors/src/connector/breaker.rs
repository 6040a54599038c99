//! Circuit breaker (to be written).
