//! Finding plugins (placeholder).
