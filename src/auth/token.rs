//! API tokens: generation, hashing and the constant-time check. Tokens are `g3c_` followed
//! by 32 random bytes in hex (256 bits of entropy). Against a secret that long a slow,
//! salted password hash (argon2, bcrypt) adds nothing: nobody can enumerate 2^256
//! candidates, fast hash or not. So the configuration keeps `sha256:<hex>` of the token,
//! and a request's token is hashed once and compared with every configured hash in
//! constant time, so the comparison time says nothing about how much of a hash matched.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// What every generated token starts with (it helps secret scanners spot a leaked one).
pub const TOKEN_PREFIX: &str = "g3c_";
/// What every stored hash starts with.
pub const HASH_PREFIX: &str = "sha256:";

/// A fresh token: `g3c_` + 64 hex digits.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex(&bytes))
}

/// The stored form of a token: `sha256:<64 hex digits>`.
pub fn hash(token: &str) -> String {
    format!("{HASH_PREFIX}{}", hex(&digest(token)))
}

/// The raw SHA-256 of a token.
pub fn digest(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(token.as_bytes()));
    out
}

/// Parses a stored hash (`sha256:` + 64 hex digits) into its bytes.
pub fn parse_hash(stored: &str) -> Result<[u8; 32], String> {
    let hexpart = stored.strip_prefix(HASH_PREFIX).ok_or_else(|| {
        format!("expected '{HASH_PREFIX}' followed by 64 hex digits (see `gns3-central token create`)")
    })?;
    if hexpart.len() != 64 || !hexpart.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("expected 64 hex digits after '{HASH_PREFIX}', got {} characters", hexpart.len()));
    }
    let mut out = [0u8; 32];
    for (i, chunk) in hexpart.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).map_err(|e| e.to_string())?;
        out[i] = u8::from_str_radix(s, 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Equal in time independent of where the first difference is.
pub fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= x ^ y;
    }
    // black_box keeps the optimizer from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_long_prefixed_and_distinct() {
        let (a, b) = (generate(), generate());
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        assert_ne!(a, b);
    }

    #[test]
    fn hash_round_trips_through_parse() {
        let t = generate();
        let stored = hash(&t);
        assert_eq!(parse_hash(&stored).unwrap(), digest(&t));
        assert!(constant_time_eq(&parse_hash(&stored).unwrap(), &digest(&t)));
        assert!(!constant_time_eq(&parse_hash(&stored).unwrap(), &digest("other")));
    }

    #[test]
    fn known_sha256_vector() {
        assert_eq!(hash("abc"), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn bad_hashes_are_rejected_with_a_reason() {
        assert!(parse_hash("abc").unwrap_err().contains("sha256:"));
        assert!(parse_hash("sha256:abcd").unwrap_err().contains("64 hex"));
        let bad = format!("sha256:{}", "z".repeat(64));
        assert!(parse_hash(&bad).is_err());
    }
}
