//! Deterministic zip archives and SHA-256 digests: the one home of both for the whole project.
//!
//! Artifacts are content-addressed (an unchanged artifact is never uploaded twice) and a release
//! manifest records their digests, so the same inputs must give the same bytes on every machine
//! and every run. A zip written here therefore has its entries sorted by name, every timestamp
//! fixed at the zip epoch (1980-01-01 00:00:00), the Unix "made by" system, no extra fields, and
//! only two permission modes: `0o755` for executables and `0o644` for everything else. Nothing of
//! the host (clock, umask, file system order, owner) reaches the bytes.

use std::io::{Cursor, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, System, ZipWriter};

/// One file inside an archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the archive, `/`-separated, relative (no leading `/`, no `..`).
    pub name: String,
    pub bytes: Vec<u8>,
    /// Stored as mode `0o755` when true (a Lambda `bootstrap` must be executable), else `0o644`.
    pub executable: bool,
}

impl Entry {
    pub fn file(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Entry {
        Entry { name: name.into(), bytes: bytes.into(), executable: false }
    }

    pub fn executable(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Entry {
        Entry { name: name.into(), bytes: bytes.into(), executable: true }
    }
}

/// Deflate level: the highest, since artifacts are written once and downloaded many times.
const DEFLATE_LEVEL: i64 = 9;

/// Zips `entries` deterministically: the same entries, in any order, give the same bytes.
/// Fails on an empty, absolute, `..`-containing or duplicate name.
pub fn zip(entries: &[Entry]) -> Result<Vec<u8>> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|left, right| left.name.cmp(&right.name));
    for pair in sorted.windows(2) {
        if pair[0].name == pair[1].name {
            bail!("two archive entries are named `{}`: entry names must be unique", pair[0].name);
        }
    }
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for entry in sorted {
        check_name(&entry.name)?;
        let mode = if entry.executable { 0o755 } else { 0o644 };
        let options = SimpleFileOptions::DEFAULT
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(DEFLATE_LEVEL))
            .last_modified_time(DateTime::DEFAULT)
            .system(System::Unix)
            .unix_permissions(mode);
        writer.start_file(entry.name.as_str(), options).with_context(|| format!("adding `{}` to a zip", entry.name))?;
        writer.write_all(&entry.bytes).with_context(|| format!("writing `{}` into a zip", entry.name))?;
    }
    let cursor = writer.finish().context("finishing a zip archive")?;
    Ok(cursor.into_inner())
}

/// Zips `entries` into `path` (creating its folder) and returns the archive's SHA-256 (hex).
pub fn zip_to_file(entries: &[Entry], path: &Path) -> Result<String> {
    let bytes = zip(entries)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(sha256_hex(&bytes))
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// SHA-256 of the file at `path`, lowercase hex, read in chunks.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("opening {} to hash it", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut buffer).with_context(|| format!("reading {} to hash it", path.display()))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn check_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains('\\')
        || name.split('/').any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        bail!("archive entry name `{name}` is not a relative `/`-separated path without `.`, `..` or empty parts");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use zip::ZipArchive;

    use super::*;

    fn entries() -> Vec<Entry> {
        vec![
            Entry::file("taskdef.json", br#"{"family":"web"}"#.to_vec()),
            Entry::executable("bootstrap", vec![0x7f, b'E', b'L', b'F', 0, 1, 2, 3]),
            Entry::file("nested/appspec.yaml", b"version: 0.0\n".to_vec()),
        ]
    }

    #[test]
    fn same_entries_in_any_order_give_identical_bytes() {
        let first = zip(&entries()).unwrap();
        let mut reversed = entries();
        reversed.reverse();
        let second = zip(&reversed).unwrap();
        assert_eq!(first, second);
        assert_eq!(sha256_hex(&first), sha256_hex(&second));
    }

    #[test]
    fn bytes_do_not_depend_on_the_clock() {
        let first = zip(&entries()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2100)); // zip times have 2 s resolution
        assert_eq!(first, zip(&entries()).unwrap());
    }

    #[test]
    fn a_changed_byte_changes_the_digest() {
        let mut changed = entries();
        changed[0].bytes.push(b' ');
        assert_ne!(sha256_hex(&zip(&entries()).unwrap()), sha256_hex(&zip(&changed).unwrap()));
    }

    #[test]
    fn archive_reads_back_sorted_with_fixed_modes_and_times() {
        let bytes = zip(&entries()).unwrap();
        let mut archive = ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut seen = Vec::new();
        for index in 0..archive.len() {
            let mut file = archive.by_index(index).unwrap();
            let mut content = Vec::new();
            file.read_to_end(&mut content).unwrap();
            let time = file.last_modified().unwrap();
            assert_eq!((time.year(), time.month(), time.day(), time.hour(), time.minute()), (1980, 1, 1, 0, 0));
            seen.push((file.name().unwrap().to_string(), file.unix_mode().unwrap() & 0o777, content));
        }
        let expected: Vec<(String, u32, Vec<u8>)> = vec![
            ("bootstrap".into(), 0o755, vec![0x7f, b'E', b'L', b'F', 0, 1, 2, 3]),
            ("nested/appspec.yaml".into(), 0o644, b"version: 0.0\n".to_vec()),
            ("taskdef.json".into(), 0o644, br#"{"family":"web"}"#.to_vec()),
        ];
        assert_eq!(seen, expected);
    }

    #[test]
    fn bad_names_are_refused() {
        for name in ["", "/etc/passwd", "a/../b", "a//b", "./a", "a\\b", "a/"] {
            let result = zip(&[Entry::file(name, b"x".to_vec())]);
            assert!(result.is_err(), "`{name}` should be refused");
        }
        let duplicate = zip(&[Entry::file("a", b"1".to_vec()), Entry::file("a", b"2".to_vec())]);
        assert!(duplicate.unwrap_err().to_string().contains("two archive entries are named `a`"));
    }

    #[test]
    fn known_digests() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        let dir = std::env::temp_dir().join(format!("gbg-archive-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("abc.txt");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(sha256_file(&path).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let zipped = dir.join("out/a.zip");
        let digest = zip_to_file(&entries(), &zipped).unwrap();
        assert_eq!(digest, sha256_file(&zipped).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
