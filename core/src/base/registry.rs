//! Bases from a registry (`docker://REF` or a bare `REF`): manifests by tag or digest, the
//! config read whole, layers streamed from the registry when a sink copies them.

use super::manifest::{self, Document, Store};
use super::ResolvedBase;
use crate::error::{Error, Result};
use crate::layer::BlobSource;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::{Client, RegistryOptions};
use std::path::Path;
use std::sync::Arc;

struct RegistryStore<'a> {
    reference: &'a Reference,
    client: Arc<Client>,
}

impl Store for RegistryStore<'_> {
    fn name(&self) -> String {
        format!("docker://{}", self.reference)
    }

    fn manifest(&self, digest: &str, size: Option<u64>) -> Result<Vec<u8>> {
        let (bytes, _, _) = self.client.get_manifest(self.reference.repository(), digest)?;
        manifest::verify(|| format!("manifest {digest} from {}", self.name()), &bytes, digest, size)?;
        Ok(bytes)
    }

    fn blob(&self, digest: &str, size: u64) -> Result<Vec<u8>> {
        let bytes = self.client.get_blob_bytes(self.reference.repository(), digest)?;
        manifest::verify(|| format!("blob {digest} from {}", self.name()), &bytes, digest, Some(size))?;
        Ok(bytes)
    }

    fn layer_source(&self, digest: &str, _size: u64) -> Result<BlobSource> {
        let location = format!("docker://{}", self.reference.with_digest(digest));
        Ok(BlobSource::Registry {
            client: self.client.clone(),
            repository: self.reference.repository().to_string(),
            location: Arc::from(Path::new(&location)),
            local_copy: None,
        })
    }
}

pub(super) fn resolve(reference: &Reference, platform: &Platform, options: &RegistryOptions) -> Result<ResolvedBase> {
    resolve_inner(reference, platform, options).map_err(|e| match e {
        Error::Network { .. } | Error::Registry { .. } | Error::RegistryAuth { .. } => {
            Error::BaseUnavailable { base: format!("docker://{reference}"), source: Box::new(e) }
        }
        other => other,
    })
}

fn resolve_inner(reference: &Reference, platform: &Platform, options: &RegistryOptions) -> Result<ResolvedBase> {
    let client = Client::new(reference.registry(), options)?;
    let store = RegistryStore { reference, client };
    let wanted = reference.digest().or(reference.tag()).unwrap_or("latest");
    let (bytes, media_type, _) = store.client.get_manifest(reference.repository(), wanted)?;
    let digest = crate::digest::sha256_digest(&bytes);
    if let Some(pinned) = reference.digest() {
        manifest::verify(|| format!("manifest of {}", store.name()), &bytes, pinned, None)?;
    }
    let mut resolved = manifest::resolve(&store, Document { bytes, digest, media_type }, platform)?;
    resolved.name = Some(reference.to_string());
    Ok(resolved)
}
