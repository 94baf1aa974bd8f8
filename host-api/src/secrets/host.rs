//! The secrets capability: `airlock:step/secrets`. Its per-run state is the
//! run's secrets and the table of the handles it gave out; crypto and http
//! resolve handles through [`SecretsState::value_of`].

use std::sync::Arc;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable, ResourceTableError};

use crate::bindings::secrets::{self, Error, Host, HostSecret};
use crate::capability::{Capability, RunHost, RunSetup, RunShared, StoreData};
use crate::secrets::{RunSecrets, SecretHandle};

/// `airlock:step/secrets`.
pub struct Secrets;

/// One run's secrets and the handles given to the guest, capped at the
/// run's `max_resources`.
pub struct SecretsState {
    secrets: Arc<RunSecrets>,
    handles: ResourceTable,
}

impl SecretsState {
    /// The run's secrets (grants and loaded values).
    pub fn secrets(&self) -> &Arc<RunSecrets> {
        &self.secrets
    }

    /// The name and value behind a handle the guest passed back. A handle
    /// is given out only for a granted name with a value, so the value is
    /// there unless the handle is not this run's.
    pub(crate) fn value_of(
        &self,
        handle: &Resource<SecretHandle>,
    ) -> Result<(&str, Option<&str>), ResourceTableError> {
        let name = &self.handles.get(handle)?.name;
        Ok((name, self.secrets.value(name)))
    }
}

pub struct SecretsView<'a> {
    shared: &'a RunShared,
    state: &'a mut SecretsState,
}

impl HasData for Secrets {
    type Data<'a> = SecretsView<'a>;
}

impl Capability for Secrets {
    type State = SecretsState;

    fn add_to_linker<T: StoreData>(&self, linker: &mut Linker<T>) -> wasmtime::Result<()> {
        secrets::add_to_linker::<T, Secrets>(linker, |t| {
            let (shared, state) = t.run_host().view::<SecretsState>();
            SecretsView { shared, state }
        })
    }

    fn prepare(&self, setup: &mut RunSetup, _: &RunHost) -> SecretsState {
        let mut handles = ResourceTable::new();
        handles.set_max_capacity(setup.limits.max_resources);
        SecretsState {
            secrets: Arc::new(std::mem::take(&mut setup.secrets)),
            handles,
        }
    }
}

impl Host for SecretsView<'_> {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<Resource<SecretHandle>, Error>> {
        self.shared.check_payload("secrets.get", name.len())?;
        let secrets = &self.state.secrets;
        if !secrets.grants().allows(&name) {
            return Ok(Err(Error::NotGranted));
        }
        let Some(value) = secrets.value(&name) else {
            return Ok(Err(Error::NotFound));
        };
        self.shared.redactor.register(&name, value);
        let handle = self.state.handles.push(SecretHandle { name })?;
        Ok(Ok(handle))
    }
}

impl HostSecret for SecretsView<'_> {
    fn name(&mut self, handle: Resource<SecretHandle>) -> wasmtime::Result<String> {
        Ok(self.state.handles.get(&handle)?.name.clone())
    }

    fn reveal(
        &mut self,
        handle: Resource<SecretHandle>,
    ) -> wasmtime::Result<Result<String, Error>> {
        let (name, value) = self.state.value_of(&handle)?;
        if !self.state.secrets.grants().allows_reveal(name) {
            return Ok(Err(Error::RevealNotGranted));
        }
        Ok(Ok(value.unwrap_or_default().to_string()))
    }

    fn drop(&mut self, handle: Resource<SecretHandle>) -> wasmtime::Result<()> {
        self.state.handles.delete(handle)?;
        Ok(())
    }
}
