//! tmp
#[doc(inline)]
pub use vigil_macros::timed;
/// Timing.
pub mod timing {
    pub use vigil_timing::*;
}
