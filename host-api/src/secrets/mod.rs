//! `airlock:step/secrets`: granted secrets as opaque handles.
//!
//! Why a name outside the grant gets `not-granted` even when no such secret
//! exists: answering `not-found` for unknown names would let a step probe
//! which secrets a project holds. Only granted names can be `not-found`.
//!
//! Why values are registered with the run's redactor at `get`, not at
//! `reveal`: a handle can reach the outside through other host calls (an
//! HMAC, later an HTTP auth header an upstream may echo), so the value is
//! masked from the moment the run holds it.

mod host;

pub use host::{Secrets, SecretsState};

use std::collections::{BTreeSet, HashMap};

use zeroize::Zeroizing;

/// What a step's manifest grants: the names it may `get`, and the subset it
/// may `reveal`. Everything else is denied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretGrants {
    pub names: BTreeSet<String>,
    pub reveal: BTreeSet<String>,
}

impl SecretGrants {
    pub fn allows(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    pub fn allows_reveal(&self, name: &str) -> bool {
        self.names.contains(name) && self.reveal.contains(name)
    }
}

/// The secrets available to one run: its grants and the values the host
/// loaded (or was passed) for granted names. Values are zeroed on drop.
#[derive(Default)]
pub struct RunSecrets {
    grants: SecretGrants,
    values: HashMap<String, Zeroizing<String>>,
}

impl RunSecrets {
    /// Values for names outside `grants` are dropped here, so no code path
    /// can hand them to the guest.
    pub fn new(
        grants: SecretGrants,
        values: impl IntoIterator<Item = (String, Zeroizing<String>)>,
    ) -> Self {
        let values = values
            .into_iter()
            .filter(|(name, _)| grants.allows(name))
            .collect();
        Self { grants, values }
    }

    pub fn grants(&self) -> &SecretGrants {
        &self.grants
    }

    pub(crate) fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|v| v.as_str())
    }
}

impl std::fmt::Debug for RunSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: never the values.
        f.debug_struct("RunSecrets")
            .field("grants", &self.grants)
            .field("loaded", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The host-side representation of a guest's `secret` handle: the name
/// only. The value stays in [`RunSecrets`].
#[derive(Debug)]
pub struct SecretHandle {
    pub(crate) name: String,
}
