use thiserror::Error;

/// Why a unit name is not one systemd would accept.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// The name is empty or has an empty prefix (`.service`, `@.service`).
    #[error("unit name is empty")]
    Empty,
    /// The name is longer than systemd's limit of 255 bytes.
    #[error("unit name is longer than 255 bytes")]
    TooLong,
    /// The name contains a character systemd does not allow in unit names.
    #[error("unit name contains {0:?}; allowed are ASCII letters, digits and : _ . - \\ @")]
    BadChar(char),
    /// The name has no unit-type suffix such as `.service`.
    #[error("unit name has no type suffix (such as .service or .target)")]
    NoSuffix,
    /// The suffix is not a unit type systemd knows.
    #[error("unknown unit type suffix .{0}")]
    BadSuffix(String),
    /// The name has more than one `@`, or an `@` in the wrong place.
    #[error("misplaced @ in unit name")]
    BadAt,
    /// The suffix is valid but not the type this place needs.
    #[error("expected a .{expected} unit, got .{found}")]
    WrongType {
        /// The suffix that was needed.
        expected: &'static str,
        /// The suffix that was given.
        found: String,
    },
}

/// Why a value cannot be written into a unit file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValueError {
    /// A newline would start a new line, and so a new key: never allowed.
    #[error("value contains a newline; unit files have one value per line")]
    Newline,
    /// Control characters have no meaning in unit files and hide mistakes.
    #[error("value contains the control character U+{0:04X}")]
    ControlChar(u32),
    /// A line ending in a backslash continues on the next line in systemd.
    #[error("value ends with a backslash, which systemd reads as a line continuation")]
    TrailingBackslash,
    /// A value that must say something is empty.
    #[error("value is empty")]
    Empty,
    /// A command line needs at least the program.
    #[error("command has no program (empty argv)")]
    EmptyArgv,
    /// argv[0] may not start with one of systemd's command prefixes.
    #[error("program {0:?} starts with one of systemd's prefixes @ - : + ! (write them in a command string instead)")]
    ProgramPrefix(String),
    /// Directive names are letters and digits, starting with a letter.
    #[error("{0:?} is not a valid directive name (letters and digits, starting with a letter)")]
    BadKey(String),
    /// Section names are printable and contain no brackets.
    #[error("{0:?} is not a valid section name")]
    BadSection(String),
    /// Environment variable names are `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("{0:?} is not a valid environment variable name")]
    BadEnvName(String),
    /// A token in a space-separated list is empty, contains a space, or a
    /// backslash other than a `\xHH` escape.
    #[error(
        "list item {0:?} is empty, contains whitespace, or a backslash that is not a \\xHH escape"
    )]
    BadListItem(String),
}
