use std::path::PathBuf;

/// What can go wrong reading an RNTuple or a geometry. Every variant names the file; problems with one field
/// name the field.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The bytes contradict the format (a bad checksum, a size past the end, a broken frame).
    #[error("{}: {what}", path.display())]
    Malformed { path: PathBuf, what: String },
    /// Valid RNTuple that this reader does not read (a newer format, a field type it lacks).
    #[error("{}: {what}", path.display())]
    Unsupported { path: PathBuf, what: String },
    /// No RNTuple (of that name) in the file, or no such field.
    #[error("{}: {what}", path.display())]
    NotFound { path: PathBuf, what: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A problem found while parsing, before the file's path is attached.
#[derive(Debug)]
pub(crate) enum Fault {
    Io(std::io::Error),
    Malformed(String),
    Unsupported(String),
    NotFound(String),
}

impl Fault {
    /// The same fault, said of field `name` (unless it already names one).
    pub(crate) fn in_field(self, name: &str) -> Self {
        let name_it = |what: String| {
            if what.starts_with("field `") {
                what
            } else {
                format!("field `{name}`: {what}")
            }
        };
        match self {
            Fault::Malformed(what) => Fault::Malformed(name_it(what)),
            Fault::Unsupported(what) => Fault::Unsupported(name_it(what)),
            other => other,
        }
    }

    pub(crate) fn at(self, path: &std::path::Path) -> Error {
        let path = path.to_path_buf();
        match self {
            Fault::Io(source) => Error::Io { path, source },
            Fault::Malformed(what) => Error::Malformed { path, what },
            Fault::Unsupported(what) => Error::Unsupported { path, what },
            Fault::NotFound(what) => Error::NotFound { path, what },
        }
    }
}

impl From<std::io::Error> for Fault {
    fn from(e: std::io::Error) -> Self {
        Fault::Io(e)
    }
}

pub(crate) fn malformed<T>(what: impl Into<String>) -> Result<T, Fault> {
    Err(Fault::Malformed(what.into()))
}

pub(crate) fn unsupported<T>(what: impl Into<String>) -> Result<T, Fault> {
    Err(Fault::Unsupported(what.into()))
}
