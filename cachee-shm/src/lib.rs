//! cachee-shm (under construction).
