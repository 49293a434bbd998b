//! Least privilege for live capture: once the device and output files are open, root is given
//! up (to `-Z user`, else the sudo caller, else `nobody`). Setting the uid away from 0 also
//! clears every capability.

use std::ffi::CString;

use thiserror::Error;

/// Why privileges could not be dropped.
#[derive(Debug, Error)]
pub enum PrivilegeError {
    /// No such user.
    #[error("no such user '{0}' for -Z")]
    NoUser(String),
    /// A system call failed.
    #[error("cannot drop privileges to {who}: {call} failed: {err}")]
    Call { who: String, call: &'static str, err: std::io::Error },
}

/// What happened to the process's privileges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not root to begin with: nothing to do.
    NotRoot,
    /// `-Z root`: stays root.
    KeptRoot,
    /// Now running as this user.
    Dropped { user: String, uid: u32, gid: u32 },
}

/// The user to become: `-Z` if given, else `$SUDO_UID/$SUDO_GID`, else `nobody`.
pub fn target(z: Option<&str>) -> Result<Option<(String, u32, u32)>, PrivilegeError> {
    if z == Some("root") {
        return Ok(None);
    }
    if let Some(name) = z {
        return lookup(name).map(Some);
    }
    let sudo = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u32>().ok());
    if let (Some(uid), Some(gid)) = (sudo("SUDO_UID"), sudo("SUDO_GID")) {
        if uid != 0 {
            let user = std::env::var("SUDO_USER").unwrap_or_else(|_| format!("uid {uid}"));
            return Ok(Some((user, uid, gid)));
        }
    }
    lookup("nobody").map(Some)
}

fn lookup(name: &str) -> Result<(String, u32, u32), PrivilegeError> {
    if let Ok(uid) = name.parse::<u32>() {
        return Ok((name.to_string(), uid, uid));
    }
    let c = CString::new(name).map_err(|_| PrivilegeError::NoUser(name.to_string()))?;
    // SAFETY: getpwnam returns a pointer into static storage or null; we copy out at once.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    if pw.is_null() {
        return Err(PrivilegeError::NoUser(name.to_string()));
    }
    // SAFETY: non-null pointer from getpwnam.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok((name.to_string(), uid, gid))
}

/// Drops root as `-Z` says. Call after opening the device and every output file.
pub fn drop_root(z: Option<&str>) -> Result<Outcome, PrivilegeError> {
    // SAFETY: plain getters.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(Outcome::NotRoot);
    }
    let Some((user, uid, gid)) = target(z)? else { return Ok(Outcome::KeptRoot) };
    let fail = |call| PrivilegeError::Call { who: user.clone(), call, err: std::io::Error::last_os_error() };
    // SAFETY: standard privilege-dropping sequence; each result is checked.
    unsafe {
        let groups = [gid];
        if libc::setgroups(1, groups.as_ptr()) != 0 {
            return Err(fail("setgroups"));
        }
        if libc::setgid(gid) != 0 {
            return Err(fail("setgid"));
        }
        if libc::setuid(uid) != 0 {
            return Err(fail("setuid"));
        }
        if uid != 0 && (libc::setuid(0) == 0 || libc::geteuid() == 0) {
            return Err(PrivilegeError::Call {
                who: user,
                call: "setuid",
                err: std::io::Error::other("root could be regained"),
            });
        }
    }
    Ok(Outcome::Dropped { user, uid, gid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z_root_keeps_root() {
        assert_eq!(target(Some("root")).unwrap(), None);
    }

    #[test]
    fn unknown_users_are_an_error() {
        assert!(matches!(target(Some("no-such-user-smtpscope")), Err(PrivilegeError::NoUser(_))));
    }

    #[test]
    fn nobody_exists_as_the_default() {
        let t = target(Some("nobody")).unwrap().unwrap();
        assert_eq!(t.0, "nobody");
        assert_ne!(t.1, 0);
    }
}
