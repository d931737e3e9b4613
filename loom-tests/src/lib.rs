//! loom-tests (under construction).
