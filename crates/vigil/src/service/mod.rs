//! The service layer wired to the registry.

#[doc(inline)]
pub use vigil_service::{health, recommend};
