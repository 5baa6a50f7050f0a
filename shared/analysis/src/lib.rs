//! `alyx-analysis`: analyses as data. `jobs` is a histogram job split by chunk (what every
//! executor runs and how partial results merge); `notebook` is a notebook as an Automerge
//! document and how its cells run.

pub mod error;
pub mod jobs;
pub mod notebook;

pub use error::Error;
