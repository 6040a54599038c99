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

/// Registers the modules of the file (a missing file is an empty one). On the shared bus
/// they are written to Redis unless the name is registered there already (Redis wins).
pub async fn load(path: &str, registry: &ModuleRegistry) -> std::io::Result<()> {
    if path.trim().is_empty() || !Path::new(path).exists() {
        return Ok(());
    }
    let raw = std::fs::read(path)?;
    let file: File =
        serde_json::from_slice(&raw).map_err(|e| std::io::Error::other(format!("modules.state_file {path}: {e}")))?;
    for e in file.modules {
        let digest = token::parse_hash(&e.hash)
            .map_err(|m| std::io::Error::other(format!("modules.state_file {path}: module '{}': {m}", e.name)))?;
        if registry.shared().is_some() {
            registry.seed(&e.name, digest, e.id, e.created_at).await;
            continue;
        }
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
        file.modules.push(Entry {
            name: m.name,
            id,
            created_at: m.created_at,
            hash: format!("{}{}", token::HASH_PREFIX, hex(&d)),
        });
    }
    let tmp = format!("{path}.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use gns3_central_actors::modules::ModulesConfig;

    #[actix_rt::test]
    async fn registrations_survive_a_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("modules.json").to_string_lossy().into_owned();
        let a = ModuleRegistry::new(ModulesConfig::default(), None);
        let slot = a.register("monitoring", ModuleKind::Remote, Some(token::digest("g3m_x"))).unwrap();
        a.register("inproc", ModuleKind::InProcess, None).unwrap();
        save(&path, &a).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("sha256:") && !text.contains("g3m_x") && !text.contains("inproc"), "{text}");
        let b = ModuleRegistry::new(ModulesConfig::default(), None);
        load(&path, &b).await.unwrap();
        let back = b.get("monitoring").expect("restored");
        assert_eq!((back.id, back.created_at), (slot.id, slot.created_at));
        assert!(b.authenticate("monitoring", &token::digest("g3m_x")).is_ok());
        std::fs::write(&path, "{nope").unwrap();
        let e = load(&path, &ModuleRegistry::new(ModulesConfig::default(), None)).await.unwrap_err().to_string();
        assert!(e.contains("modules.state_file"), "{e}");
        assert!(load("", &b).await.is_ok() && save("", &b).is_ok(), "empty: runtime only");
    }

    #[test]
    fn default_toml_matches_the_module_defaults() {
        let s = Settings::load_with(None, &|_| None, vec![]).unwrap();
        assert_eq!(s.modules, ModulesConfig::default());
        assert!(s.sinks.is_empty());
    }

    #[test]
    fn modules_and_sinks_load_from_a_config_file_and_urls_are_masked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lab.toml");
        std::fs::write(
            &file,
            "[modules]\noffline_policy = \"refuse\"\n\n[[sinks]]\nname = \"ops\"\nurl = \"https://hooks.example/T000/secret\"\n\
             format = \"teams\"\ntypes = [\"node_status\"]\nmin_priority = \"HIGH\"\n",
        )
        .unwrap();
        let s = Settings::load_with(Some(&file), &|_| None, vec![]).unwrap();
        assert_eq!(s.modules.offline_policy, gns3_central_actors::modules::OfflinePolicy::Refuse);
        assert_eq!(s.sinks.len(), 1);
        let dump = s.to_masked_toml();
        assert!(dump.contains("[[sinks]]") && !dump.contains("T000/secret"), "{dump}");
        std::fs::write(&file, "[[sinks]]\nname = \"ops\"\nurl = \"ftp://x\"\n").unwrap();
        let e = Settings::load_with(Some(&file), &|_| None, vec![]).unwrap_err().to_string();
        assert!(e.contains("sinks[0].url"), "{e}");
    }
}
