//! trybuild cases for eslock-macros live in `fail/` and `pass/`; `tests/ui.rs` runs them.
