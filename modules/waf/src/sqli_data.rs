//! libinjection data.
