mod blocks;
pub(crate) mod consts;
pub(crate) mod dir;
mod error;
pub mod file;
mod key;
pub mod utils;

pub(crate) use key::Key;

pub use error::Error;
pub use error::Result;
