//! Built-in plugins (placeholder).
