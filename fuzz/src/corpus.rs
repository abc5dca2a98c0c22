//! The checked-in seed corpus of a fuzz target, for the stable property
//! tests that replay it (each includes this file with `#[path]`).

use std::path::{Path, PathBuf};

/// The files of `fuzz/corpus/<target>`, sorted by path, with their bytes;
/// `workspace` is the repository's root. Panics (failing the test) when
/// the directory is missing or holds fewer than ten files.
pub fn read(workspace: &Path, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = workspace.join("fuzz/corpus").join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the fuzz corpus {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a corpus entry").path();
            let bytes = std::fs::read(&path).expect("a corpus file");
            (path, bytes)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{} holds {} files",
        dir.display(),
        files.len()
    );
    files
}
