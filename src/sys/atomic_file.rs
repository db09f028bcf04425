//! Crash-safe state files: write a temp file beside the target, fsync it, rename it over the
//! target, fsync the directory. A crash at any moment leaves either the old or the new file,
//! never a half-written one.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a state file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum AtomicFileError {
    /// Creating or writing the temporary file failed (disk full, read-only, permissions).
    #[error(
        "cannot write {path}: check that the state directory exists and is writable by pirouterd"
    )]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The rename over the target failed.
    #[error("cannot replace {path}")]
    Rename {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Reading an existing file failed for a reason other than "not found".
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes `data` to `path` atomically (temp file, fsync, rename, fsync of the directory).
pub fn write(path: &Path, data: &[u8]) -> Result<(), AtomicFileError> {
    let tmp = tmp_path(path);
    let werr = |source| AtomicFileError::Write {
        path: tmp.clone(),
        source,
    };
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(werr)?;
        f.write_all(data).map_err(werr)?;
        f.sync_all().map_err(werr)?;
    }
    fs::rename(&tmp, path).map_err(|source| AtomicFileError::Rename {
        path: path.into(),
        source,
    })?;
    if let Some(dir) = path.parent() {
        // Makes the rename itself durable; some filesystems refuse fsync on a directory.
        if let Ok(d) = File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Reads `path`; `Ok(None)` when it does not exist.
pub fn read(path: &Path) -> Result<Option<Vec<u8>>, AtomicFileError> {
    match fs::read(path) {
        Ok(data) => Ok(Some(data)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AtomicFileError::Read {
            path: path.into(),
            source,
        }),
    }
}

/// Moves a file that could not be parsed aside (`NAME.corrupt-<unix ms>`), so the daemon can
/// start fresh while the operator keeps the evidence. Returns the new path.
pub fn set_aside(path: &Path, now_ms: u64) -> std::io::Result<PathBuf> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".corrupt-{now_ms}"));
    let dest = path.with_file_name(name);
    fs::rename(path, &dest)?;
    Ok(dest)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_and_read_returns() {
        let dir = std::env::temp_dir().join(format!("pr-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir");
        let p = dir.join("state.json");
        assert!(read(&p).expect("read").is_none());
        write(&p, b"one").expect("write");
        write(&p, b"two").expect("write");
        assert_eq!(read(&p).expect("read").as_deref(), Some(&b"two"[..]));
        let aside = set_aside(&p, 42).expect("aside");
        assert!(aside.to_string_lossy().ends_with("state.json.corrupt-42"));
        assert!(read(&p).expect("read").is_none());
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
