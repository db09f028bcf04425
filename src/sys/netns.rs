//! Private namespaces for `pirouterd demo`: a new user namespace (so no root is needed where
//! unprivileged user namespaces are allowed) and a new network namespace, with the real user
//! mapped to root inside.

use std::path::PathBuf;

use nix::sched::{unshare, CloneFlags};

/// Why the demo could not get its own namespaces.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// `unshare` was refused: user namespaces are off, or the process is multithreaded.
    #[error(
        "cannot create a private user and network namespace: on Debian and Ubuntu allow it with \
         `sysctl kernel.unprivileged_userns_clone=1` (and on Ubuntu 24.04+ \
         `sysctl kernel.apparmor_restrict_unprivileged_userns=0`), or run the demo as root"
    )]
    Unshare(#[source] nix::Error),
    /// Writing the uid/gid map failed.
    #[error("cannot write {path}")]
    Map {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Moves this (still single-threaded) process into a new user + network namespace, mapping
/// the current uid and gid to root inside.
pub fn enter_private() -> Result<(), NetnsError> {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET).map_err(NetnsError::Unshare)?;
    let write = |path: &str, data: String| {
        std::fs::write(path, data).map_err(|source| NetnsError::Map {
            path: path.into(),
            source,
        })
    };
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    Ok(())
}
