//! One file per command family.
pub mod bench;
pub mod check;
pub mod reload;
pub mod run;
