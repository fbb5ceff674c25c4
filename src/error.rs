//! The library's error type. Every variant names what was wrong and, where it helps, what was
//! expected and what was found, so the CLI can print it as one line.

use std::path::PathBuf;

/// Errors returned by the rram library (bad input, unreadable files, invalid settings).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be opened or read. The message carries the I/O error's text, so it is
    /// not also returned as `source()` (a printed chain would say it twice).
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A dataset file is not in the expected format.
    #[error("{path}: {what}")]
    Format { path: PathBuf, what: String },
    /// A dataset could not be found in any of the searched places.
    #[error("dataset {dataset} not found; looked in: {searched}")]
    DataNotFound { dataset: String, searched: String },
    /// A setting has a value outside what is accepted.
    #[error("invalid {key}: {what}")]
    Invalid { key: String, what: String },
    /// A checkpoint or config could not be read back.
    #[error("checkpoint {path}: {what}")]
    Checkpoint { path: PathBuf, what: String },
}

/// Shorthand used across the library.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An invalid setting: `key` names the setting, `what` says why.
    pub fn invalid(key: impl Into<String>, what: impl Into<String>) -> Self {
        Error::Invalid {
            key: key.into(),
            what: what.into(),
        }
    }

    /// A malformed file.
    pub fn format(path: impl Into<PathBuf>, what: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            what: what.into(),
        }
    }

    /// Wrap an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause,
        }
    }
}
