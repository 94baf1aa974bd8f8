use wasmtime::component::Resource;

use crate::StepHost;
use crate::bindings::secrets::{Error, Host, HostSecret};
use crate::secrets::SecretHandle;

impl Host for StepHost {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<Resource<SecretHandle>, Error>> {
        self.check_payload("secrets.get", name.len())?;
        if !self.secrets.grants().allows(&name) {
            return Ok(Err(Error::NotGranted));
        }
        let Some(value) = self.secrets.value(&name) else {
            return Ok(Err(Error::NotFound));
        };
        self.redactor.register(&name, value);
        let handle = self.table.push(SecretHandle { name })?;
        Ok(Ok(handle))
    }
}

impl HostSecret for StepHost {
    fn name(&mut self, handle: Resource<SecretHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(&handle)?.name.clone())
    }

    fn reveal(
        &mut self,
        handle: Resource<SecretHandle>,
    ) -> wasmtime::Result<Result<String, Error>> {
        let name = &self.table.get(&handle)?.name;
        if !self.secrets.grants().allows_reveal(name) {
            return Ok(Err(Error::RevealNotGranted));
        }
        // A handle exists only for a granted name with a value.
        let value = self.secrets.value(name).unwrap_or_default();
        Ok(Ok(value.to_string()))
    }

    fn drop(&mut self, handle: Resource<SecretHandle>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}
