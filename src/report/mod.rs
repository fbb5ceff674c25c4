//! Reports built from finished runs: the write-disturbance analysis (`disturbance`) and the
//! plotting helpers (`plots`). Nothing here trains; it reads run folders and models.

pub mod disturbance;
pub mod plots;
