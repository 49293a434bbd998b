//! Least privilege for live capture: once the device and output files are open, root is given
//! up (to `-Z user`, else the sudo caller, else `nobody`). Setting the uid away from 0 also
//! clears every capability; a non-root process given capabilities (`setcap cap_net_raw,
//! cap_net_admin=eip`) gives them up too. Either way the process can never gain privileges
//! again (`PR_SET_NO_NEW_PRIVS`), not even through a set-uid program.

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
    /// Not root to begin with: any capabilities it held are given up.
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
        // `-Z 0` names root too.
        return lookup(name).map(|t| (t.1 != 0).then_some(t));
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
        // A numeric user takes its group from the password database when it has an entry there,
        // else the group of the same number.
        // SAFETY: getpwuid returns a pointer into static storage or null; we copy out at once.
        let pw = unsafe { libc::getpwuid(uid) };
        // SAFETY: non-null pointer from getpwuid.
        let gid = if pw.is_null() { uid } else { unsafe { (*pw).pw_gid } };
        return Ok((name.to_string(), uid, gid));
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
        drop_capabilities()?;
        no_new_privileges()?;
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
    no_new_privileges()?;
    Ok(Outcome::Dropped { user, uid, gid })
}

/// Whether the user `uid` (primary group `gid`, the only group it keeps after the drop) may
/// create files in `dir`: write and search permission by the mode bits, on a writable file
/// system. (ACLs are not consulted: a check that says no when an ACL would say yes errs on the
/// side of a clear error at start.)
pub fn can_create_in(dir: &std::path::Path, uid: u32, gid: u32) -> bool {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(dir) else { return false };
    if !m.is_dir() {
        return false;
    }
    let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else { return false };
    // SAFETY: a zeroed statvfs filled in by the call; the path is NUL-terminated.
    let read_only = unsafe {
        let mut v: libc::statvfs = std::mem::zeroed();
        libc::statvfs(c.as_ptr(), &mut v) == 0 && v.f_flag & libc::ST_RDONLY != 0
    };
    if read_only {
        return false;
    }
    if uid == 0 {
        return true;
    }
    let mode = m.mode();
    let bits = if m.uid() == uid {
        mode >> 6
    } else if m.gid() == gid {
        mode >> 3
    } else {
        mode
    };
    bits & 0o3 == 0o3
}

/// Linux's capability sets as `capset(2)` takes them (version 3: two 32-bit words per set).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Empties the effective, permitted, inheritable and ambient capability sets: what opened the
/// device is not needed to read from it.
fn drop_capabilities() -> Result<(), PrivilegeError> {
    let fail =
        |call| PrivilegeError::Call { who: "no capabilities".into(), call, err: std::io::Error::last_os_error() };
    let header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let none = [CapData { effective: 0, permitted: 0, inheritable: 0 }; 2];
    // SAFETY: capset reads one header and two data structs of the layout declared above; giving
    // capabilities up is always allowed. The ambient set is cleared first (it needs no privilege).
    unsafe {
        if libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 {
            // Kernels before 4.3 have no ambient set: nothing to clear.
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
                return Err(fail("prctl(PR_CAP_AMBIENT_CLEAR_ALL)"));
            }
        }
        if libc::syscall(libc::SYS_capset, &header as *const CapHeader, none.as_ptr()) != 0 {
            return Err(fail("capset"));
        }
    }
    Ok(())
}

/// No later `execve` (none is made, but a library could) may gain privileges.
fn no_new_privileges() -> Result<(), PrivilegeError> {
    // SAFETY: a flag on the calling thread's process, checked.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(PrivilegeError::Call {
            who: "no new privileges".into(),
            call: "prctl(PR_SET_NO_NEW_PRIVS)",
            err: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z_root_keeps_root() {
        assert_eq!(target(Some("root")).unwrap(), None);
    }

    #[test]
    fn z_0_is_root_too_and_keeps_root() {
        assert_eq!(target(Some("0")).unwrap(), None);
    }

    #[test]
    fn a_numeric_user_takes_its_group_from_the_password_database() {
        // Debian's `sync` is uid 4 in group 65534: the number finds the same group as the name.
        if let Ok(Some((_, 4, gid))) = target(Some("sync")) {
            assert_eq!(target(Some("4")).unwrap(), Some(("4".into(), 4, gid)));
        }
        // A number without an entry keeps its own number as the group.
        assert_eq!(target(Some("4242")).unwrap(), Some(("4242".into(), 4242, 4242)));
    }

    #[test]
    fn a_directory_is_writable_by_its_owner_and_not_by_others_without_the_bits() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let d = tempfile::tempdir().unwrap();
        let m = std::fs::metadata(d.path()).unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(can_create_in(d.path(), m.uid(), m.gid()) || m.uid() == 0);
        assert!(!can_create_in(d.path(), 54_321, 54_321), "others have r-x only");
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(can_create_in(d.path(), 54_321, 54_321));
        assert!(!can_create_in(&d.path().join("missing"), 54_321, 54_321));
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
