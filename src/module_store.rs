//! Keeps remote modules' registrations across restarts: `modules.state_file` holds, for
//! each, its name, id, creation time and the SHA-256 of its token (never the token), as
//! JSON. Written after every registration or deletion (to a temporary file, then renamed
//! over the old one, so a crash leaves either version whole), read once at start.
//! With `state_file` empty, registrations live as long as the process.

use chrono::{DateTime, Utc};
use gns3_central_actors::modules::{ModuleKind, ModuleRegistry};
use serde::{Deserialize, Serialize};
use std::path::Path;
use uuid::Uuid;

use crate::auth::token;

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    name: String,
    id: Uuid,
    created_at: DateTime<Utc>,
    hash: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    modules: Vec<Entry>,
}

fn hex(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Registers the modules of the file (a missing file is an empty one).
pub fn load(path: &str, registry: &ModuleRegistry) -> std::io::Result<()> {
    if path.trim().is_empty() || !Path::new(path).exists() {
        return Ok(());
    }
    let raw = std::fs::read(path)?;
    let file: File = serde_json::from_slice(&raw)
        .map_err(|e| std::io::Error::other(format!("modules.state_file {path}: {e}")))?;
    for e in file.modules {
        let digest = token::parse_hash(&e.hash)
            .map_err(|m| std::io::Error::other(format!("modules.state_file {path}: module '{}': {m}", e.name)))?;
        registry
            .register_as(&e.name, ModuleKind::Remote, Some(digest), e.id, e.created_at)
            .map_err(|m| std::io::Error::other(format!("modules.state_file {path}: {m}")))?;
    }
    tracing::info!(path, modules = registry.len(), "Module registrations loaded.");
    Ok(())
}

/// Writes every remote module's registration.
pub fn save(path: &str, registry: &ModuleRegistry) -> std::io::Result<()> {
    if path.trim().is_empty() {
        return Ok(());
    }
    let mut file = File::default();
    for m in registry.list().into_iter().filter(|m| m.kind == ModuleKind::Remote) {
        let Some(d) = registry.digest_of(&m.name) else { continue };
        let id = Uuid::parse_str(&m.id).unwrap_or_default();
        file.modules.push(Entry { name: m.name, id, created_at: m.created_at, hash: format!("{}{}", token::HASH_PREFIX, hex(&d)) });
    }
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, path)
}
