//! [`CachePadded`]: keeps data written often off the cache lines that every
//! `get` reads.

/// Keeps its contents on cache lines of their own (128 bytes covers
/// adjacent-line prefetching on x86 and the 128-byte lines of some ARM
/// cores).
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
