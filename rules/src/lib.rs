//! Routing rules (in progress).
