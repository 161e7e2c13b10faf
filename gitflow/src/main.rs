//! The gitflow Lambda (`bootstrap` for the `provided.al2023` runtime): opens develop-to-main pull
//! requests, validates them with CodeBuild, and approves and merges the ones that pass.

fn main() {}
