use wasmtime::component::Resource;

use crate::StepHost;
use crate::bindings::crypto::{HmacAlgorithm, Host};
use crate::secrets::SecretHandle;

impl Host for StepHost {
    fn hmac(
        &mut self,
        algorithm: HmacAlgorithm,
        key: Resource<SecretHandle>,
        data: Vec<u8>,
    ) -> wasmtime::Result<Vec<u8>> {
        self.check_payload("crypto.hmac", data.len())?;
        let name = &self.table.get(&key)?.name;
        // A handle exists only for a granted name with a value.
        let value = self.secrets.value(name).unwrap_or_default();
        Ok(crate::crypto::hmac(algorithm, value.as_bytes(), &data))
    }
}
