//! cachee-bench (under construction).
