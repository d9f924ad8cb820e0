//! The built-in library: service families shipped inside the binary.
//!
//! Each module is a `.sparrow` file in `src/library/` exporting
//! `fn unit(params)`, which returns a definition map whose `name` is the
//! default unit name. A user module of the same name in `lib/` shadows it.

/// Source names of built-in modules start with this.
pub const BUILTIN_PREFIX: &str = "<builtin>/";

static MODULES: &[(&str, &str)] = &[
    ("mariadb", include_str!("library/mariadb.sparrow")),
    ("nginx", include_str!("library/nginx.sparrow")),
    ("postgresql", include_str!("library/postgresql.sparrow")),
    ("redis", include_str!("library/redis.sparrow")),
];

/// The built-in module `name`: its source name and text.
pub fn module(name: &str) -> Option<(String, &'static str)> {
    MODULES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| (format!("{BUILTIN_PREFIX}{n}.sparrow"), *text))
}

/// The text of a built-in module by its source name (for diagnostics).
pub fn source_text(source: &str) -> Option<&'static str> {
    let name = source
        .strip_prefix(BUILTIN_PREFIX)?
        .strip_suffix(".sparrow")?;
    module(name).map(|(_, text)| text)
}

/// Names of the built-in modules.
pub fn names() -> Vec<&'static str> {
    MODULES.iter().map(|(n, _)| *n).collect()
}
