//! The crypto capability: `airlock:step/crypto`, keyed by secret handles
//! it resolves through the secrets capability's state. No state of its own.

use wasmtime::component::{HasData, Linker, Resource};

use crate::bindings::crypto::{self, HmacAlgorithm, Host};
use crate::capability::{Capability, RunHost, RunSetup, RunShared, StoreData};
use crate::secrets::{SecretHandle, SecretsState};

/// `airlock:step/crypto`; needs [`Secrets`](crate::secrets::Secrets)
/// registered.
pub struct Crypto;

pub struct CryptoView<'a> {
    shared: &'a RunShared,
    secrets: &'a SecretsState,
}

impl HasData for Crypto {
    type Data<'a> = CryptoView<'a>;
}

impl Capability for Crypto {
    type State = ();

    fn add_to_linker<T: StoreData>(&self, linker: &mut Linker<T>) -> wasmtime::Result<()> {
        crypto::add_to_linker::<T, Crypto>(linker, |t| {
            let (shared, secrets) = t.run_host().view::<SecretsState>();
            CryptoView { shared, secrets }
        })
    }

    fn prepare(&self, _: &mut RunSetup, _: &RunHost) {}
}

impl Host for CryptoView<'_> {
    fn hmac(
        &mut self,
        algorithm: HmacAlgorithm,
        key: Resource<SecretHandle>,
        data: Vec<u8>,
    ) -> wasmtime::Result<Vec<u8>> {
        self.shared.check_payload("crypto.hmac", data.len())?;
        let (_, value) = self.secrets.value_of(&key)?;
        let key = value.unwrap_or_default();
        Ok(crate::crypto::hmac(algorithm, key.as_bytes(), &data))
    }
}
