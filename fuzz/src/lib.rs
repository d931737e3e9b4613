//! fuzz (under construction).
