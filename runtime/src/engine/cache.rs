//! Compile once per content digest; keep the host's own artifact on disk.
//!
//! Why this is safe to deserialize: the cache directory holds only
//! artifacts this host compiled from validated components, written
//! atomically (temp file + rename) under a directory named by the engine's
//! compatibility hash, so an artifact from another wasmtime version or
//! configuration is never even looked up. Bytes a user sent are never
//! deserialized: `Engine::load` rejects precompiled input, which is not a
//! component, at the header check. Anyone who can write the cache directory
//! can already replace the airlock binary; keep it owned by the host's user.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use crate::engine::EngineError;

pub struct ArtifactCache {
    dir: Option<PathBuf>,
}

impl ArtifactCache {
    /// `root/<engine-compat-hash>/`; created if missing.
    pub fn open(engine: &wasmtime::Engine, root: Option<&Path>) -> Result<Self, EngineError> {
        let Some(root) = root else {
            return Ok(Self { dir: None });
        };
        let dir = root.join(compatibility_key(engine));
        std::fs::create_dir_all(&dir).map_err(|source| EngineError::CacheDir {
            path: dir.clone(),
            source,
        })?;
        Ok(Self { dir: Some(dir) })
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir.as_ref().map(|d| d.join(format!("{hex}.cwasm")))
    }

    /// The cached compiled component, if present and loadable.
    pub fn get(&self, engine: &wasmtime::Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest)?;
        if !path.exists() {
            return None;
        }
        // SAFETY: only artifacts this host wrote, for this engine's
        // compatibility hash, live here (see the module docs).
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => Some(c),
            Err(e) => {
                // Not deleted: the recompile that follows overwrites it
                // atomically, and an artifact this engine cannot use (say
                // one a differently configured process wrote) may still be
                // good for its writer.
                tracing::warn!(path = %path.display(), error = %e, "cached artifact not usable; recompiling");
                None
            }
        }
    }

    /// Stores `component`'s artifact; failures only cost a recompile later.
    pub fn put(&self, digest: &str, component: &Component) {
        let Some(path) = self.path(digest) else {
            return;
        };
        let result = component
            .serialize()
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                let dir = path.parent().expect("cache path has a parent");
                let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
                std::io::Write::write_all(&mut tmp, &bytes)?;
                tmp.persist(&path).map_err(|e| e.error)?;
                Ok(())
            });
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "could not cache compiled artifact");
        }
    }
}

/// A stable hex name for the engine's compatibility hash.
fn compatibility_key(engine: &wasmtime::Engine) -> String {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            unreachable!("only the digest is read")
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(&h.0.finalize()[..12])
}
