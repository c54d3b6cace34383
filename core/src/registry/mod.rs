//! Talking to registries: where credentials are kept.
pub mod keychain;
