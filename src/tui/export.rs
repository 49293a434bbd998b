//! Exports from the UI go through a directory opened once, at start, before a live capture gives
//! up root: files are then created relative to that descriptor (`openat`, never following a
//! symlink, never overwriting), so a process running as `nobody` writes only where it was
//! pointed, and a path swapped under it later changes nothing.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::report::{self, Format, Options};
use crate::session::Session;

/// An open export directory.
#[derive(Debug)]
pub struct ExportDir {
    fd: OwnedFd,
    path: PathBuf,
}

impl ExportDir {
    /// Opens `path` (call before dropping privileges).
    pub fn open(path: &Path) -> io::Result<Self> {
        let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: a valid C string; the result is checked.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a descriptor we just opened and own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(Self { fd, path })
    }

    /// Whether this process, as the user it now runs as, may create files in the directory
    /// (checked at start, and again after a live run gave up root).
    pub fn writable(&self) -> bool {
        // SAFETY: a valid directory descriptor and a C string; no other effect.
        unsafe { libc::faccessat(self.fd.as_raw_fd(), c".".as_ptr(), libc::W_OK, libc::AT_EACCESS) == 0 }
    }

    /// The directory as opened (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates `name` inside the directory; fails if it exists.
    pub fn create(&self, name: &str) -> io::Result<File> {
        if name.contains('/') || name.is_empty() || name == "." || name == ".." {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let c = CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: a valid directory descriptor and C string; the result is checked.
        let fd = unsafe { libc::openat(self.fd.as_raw_fd(), c.as_ptr(), flags, 0o644 as libc::c_uint) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a descriptor we just opened and own.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Creates `stem.ext`, or `stem-2.ext`, `stem-3.ext`… if taken; returns the name too.
    pub fn create_unique(&self, stem: &str, ext: &str) -> io::Result<(String, File)> {
        for n in 1..1000 {
            let name = if n == 1 { format!("{stem}.{ext}") } else { format!("{stem}-{n}.{ext}") };
            match self.create(&name) {
                Ok(f) => return Ok((name, f)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::ErrorKind::AlreadyExists.into())
    }
}

/// A timestamp for file names: `20261122-112255` (UTC).
pub fn stamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// Writes `sessions` as NDJSON or CSV (the report's own writers) to `file`; log sessions
/// (`smtpscope logs`) as the log records `logs -F json|csv` writes.
pub fn write_sessions<S: std::borrow::Borrow<Session>>(
    sessions: impl Iterator<Item = S>,
    format: Format,
    opts: Options,
    file: File,
) -> io::Result<u64> {
    let mut sessions = sessions.peekable();
    let out = Box::new(io::BufWriter::new(file));
    let logs = sessions.peek().is_some_and(|s| s.borrow().from_log.is_some());
    let mut n = 0;
    if logs {
        use report::logs::{LogFormat, Writer};
        let format = if format == Format::Csv { LogFormat::Csv } else { LogFormat::Json };
        let mut w = Writer::new(out, format, opts);
        // A view holds log sessions or wire sessions, never both.
        for s in sessions {
            if let Some(r) = &s.borrow().from_log {
                w.write(r)?;
                n += 1;
            }
        }
        w.finish()?;
        return Ok(n);
    }
    let mut w = report::writer(format, out, opts);
    for s in sessions {
        w.write(s.borrow())?;
        n += 1;
    }
    w.finish()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("smtpscope-export-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn files_are_created_inside_the_opened_directory_without_overwriting() {
        let d = tmpdir("unique");
        let x = ExportDir::open(&d).unwrap();
        let (a, _) = x.create_unique("s", "ndjson").unwrap();
        let (b, _) = x.create_unique("s", "ndjson").unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("s.ndjson", "s-2.ndjson"));
        assert!(d.join("s-2.ndjson").is_file());
        assert!(x.create("../escape").is_err());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_directory_stays_the_one_opened_even_if_its_path_moves() {
        let d = tmpdir("moved");
        let x = ExportDir::open(&d).unwrap();
        let moved = d.with_extension("moved");
        let _ = std::fs::remove_dir_all(&moved);
        std::fs::rename(&d, &moved).unwrap();
        std::fs::create_dir_all(&d).unwrap();
        x.create("after.csv").unwrap();
        assert!(moved.join("after.csv").is_file());
        assert!(!d.join("after.csv").exists());
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(&moved);
    }

    #[test]
    fn a_directory_without_write_permission_is_not_writable() {
        use std::os::unix::fs::PermissionsExt;
        let d = tmpdir("ro");
        assert!(ExportDir::open(&d).unwrap().writable());
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o555)).unwrap();
        // SAFETY: a plain getter. Root may write anywhere, so only a user can see the refusal.
        if unsafe { libc::geteuid() } != 0 {
            assert!(!ExportDir::open(&d).unwrap().writable());
        }
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_symlink_is_never_followed() {
        let d = tmpdir("link");
        std::os::unix::fs::symlink("/etc/passwd", d.join("trap.pcap")).unwrap();
        let x = ExportDir::open(&d).unwrap();
        assert!(x.create("trap.pcap").is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
