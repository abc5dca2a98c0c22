//! `setters!`: the builders' setters that store their one argument.

/// Builder setters: each `name(arg: Type) => field = value;`, with its doc
/// comment and attributes, becomes `pub fn name(mut self, arg: Type) -> Self`,
/// which sets `self.field` to `value` (an expression of `arg`) and returns
/// the builder.
macro_rules! setters {
    ($($(#[$attr:meta])* $name:ident($arg:ident: $ty:ty) => $field:ident = $value:expr;)*) => {$(
        $(#[$attr])*
        pub fn $name(mut self, $arg: $ty) -> Self {
            self.$field = $value;
            self
        }
    )*};
}
