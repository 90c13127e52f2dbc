//! Output folders replaced whole: the folder's name always names either the old folder or the
//! new one, whenever the process is killed.
//!
//! The new folder is filled as a hidden sibling `.NAME.tmp-PID`, then swapped with the old one
//! in one `renameat2(RENAME_EXCHANGE)` (Linux 3.15+), so the old folder is now the sibling and
//! is removed. Two plain renames (old away, new in) left no `NAME` at all if killed between
//! them. Where the file system cannot exchange (EINVAL: some network and FUSE file systems;
//! other systems than Linux), the two renames are the fallback, the old folder parked as
//! `.NAME.old-PID`. Siblings left by a killed process are removed by the next write of the same
//! folder, once their PID is no longer alive.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

const TMP: &str = "tmp";
const OLD: &str = "old";

/// `.NAME.KIND-PID` beside `dir`.
fn sibling(parent: &Path, name: &str, kind: &str, pid: u32) -> PathBuf {
    parent.join(format!(".{name}.{kind}-{pid}"))
}

/// The PID of a sibling of `name` (`.NAME.tmp-PID` or `.NAME.old-PID`), if `file` is one.
fn sibling_pid(file: &str, name: &str) -> Option<u32> {
    let rest = file.strip_prefix('.')?.strip_prefix(name)?.strip_prefix('.')?;
    let pid = rest.strip_prefix("tmp-").or_else(|| rest.strip_prefix("old-"))?;
    pid.parse().ok()
}

/// Whether a process with this PID exists (signal 0 checks without sending anything; EPERM
/// means it exists but is someone else's).
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: kill with signal 0 performs only the existence and permission checks.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Removes the temporaries of earlier writes of `name` whose process is gone.
pub fn clean_stale(parent: &Path, name: &str) -> io::Result<()> {
    let own = std::process::id();
    for entry in fs::read_dir(parent)? {
        let entry = entry?;
        let file = entry.file_name();
        let Some(pid) = sibling_pid(&file.to_string_lossy(), name) else { continue };
        if pid != own && !alive(pid) {
            fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

/// Swaps two existing paths in one step, if the system and file system can.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both paths are NUL-terminated C strings that live across the call.
    let r = unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE) };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// The steps of a replacement, in order; a test stops after any of them to play a kill there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// The temporary folder exists and is being filled.
    Filled,
    /// `dir` now names the new folder (the old one, if any, is the temporary's name).
    Swapped,
    /// The old folder is gone.
    Cleaned,
}

/// Writes a folder through `fill` and puts it at `dir`, replacing what was there whole. On an
/// error (of `fill` or of the file system), the old folder is left as it was.
pub fn write_dir_atomically(dir: &Path, fill: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
    write_dir_steps(dir, fill, Step::Cleaned)
}

/// `write_dir_atomically`, stopping (as a kill would) after `last`.
pub fn write_dir_steps(dir: &Path, fill: impl FnOnce(&Path) -> io::Result<()>, last: Step) -> io::Result<()> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent)?;
    let name = dir.file_name().ok_or_else(|| io::Error::other(format!("{} is not a folder name", dir.display())))?;
    let name = name.to_string_lossy().into_owned();
    clean_stale(&parent, &name)?;
    let pid = std::process::id();
    let tmp = sibling(&parent, &name, TMP, pid);
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir(&tmp)?;
    if let Err(e) = fill(&tmp) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if last == Step::Filled {
        return Ok(());
    }
    let old = replace(dir, &tmp, &sibling(&parent, &name, OLD, pid))?;
    if last == Step::Swapped {
        return Ok(());
    }
    match old {
        Some(old) => fs::remove_dir_all(old),
        None => Ok(()),
    }
}

/// Puts `tmp` at `dir`; returns where the old folder now is, if there was one.
fn replace(dir: &Path, tmp: &Path, parking: &Path) -> io::Result<Option<PathBuf>> {
    let had_old = fs::symlink_metadata(dir).is_ok();
    if !had_old {
        if let Err(e) = fs::rename(tmp, dir) {
            let _ = fs::remove_dir_all(tmp);
            return Err(e);
        }
        return Ok(None);
    }
    match exchange(tmp, dir) {
        Ok(()) => Ok(Some(tmp.to_path_buf())),
        Err(e)
            if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS))
                || e.kind() == io::ErrorKind::Unsupported =>
        {
            // No exchange here: two renames, the old folder parked beside.
            fs::rename(dir, parking)?;
            if let Err(e) = fs::rename(tmp, dir) {
                let _ = fs::rename(parking, dir);
                let _ = fs::remove_dir_all(tmp);
                return Err(e);
            }
            Ok(Some(parking.to_path_buf()))
        }
        Err(e) => {
            let _ = fs::remove_dir_all(tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let base = std::env::temp_dir().join(format!("pgsim-atomic-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).unwrap();
        base
    }

    fn contents(dir: &Path) -> String {
        fs::read_to_string(dir.join("a.txt")).unwrap()
    }

    /// A PID that no process has: a child that has exited and been waited for.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!alive(pid), "the waited-for child is gone");
        pid
    }

    #[test]
    fn failed_fill_leaves_nothing_and_keeps_old() {
        let base = scratch("fail");
        let dir = base.join("out");
        write_dir_atomically(&dir, |t| fs::write(t.join("a.txt"), "1")).unwrap();
        assert_eq!(contents(&dir), "1");
        let err = write_dir_atomically(&dir, |t| {
            fs::write(t.join("a.txt"), "2")?;
            Err(io::Error::other("boom"))
        });
        assert!(err.is_err());
        assert_eq!(contents(&dir), "1", "old output untouched");
        assert_eq!(fs::read_dir(&base).unwrap().count(), 1, "no temporary folder left");
        write_dir_atomically(&dir, |t| fs::write(t.join("b.txt"), "3")).unwrap();
        assert!(!dir.join("a.txt").exists() && dir.join("b.txt").exists(), "replaced whole");
        fs::remove_dir_all(&base).unwrap();
    }

    /// A kill after each step leaves `out` naming the old folder or the new one, never nothing;
    /// the next write (by another process: the killed one's PID is gone) removes what was left.
    #[test]
    fn a_kill_at_any_step_leaves_the_old_or_the_new_folder() {
        for last in [Step::Filled, Step::Swapped, Step::Cleaned] {
            let base = scratch(&format!("kill-{last:?}"));
            let dir = base.join("out");
            write_dir_atomically(&dir, |t| fs::write(t.join("a.txt"), "old")).unwrap();
            write_dir_steps(&dir, |t| fs::write(t.join("a.txt"), "new"), last).unwrap();
            let expected = if last == Step::Filled { "old" } else { "new" };
            assert_eq!(contents(&dir), expected, "after {last:?}");
            // Play the killed process: its leftovers get a PID that is no longer alive.
            let dead = dead_pid();
            for entry in fs::read_dir(&base).unwrap() {
                let path = entry.unwrap().path();
                let file = path.file_name().unwrap().to_string_lossy().into_owned();
                if let Some(pid) = sibling_pid(&file, "out") {
                    let renamed = file.replace(&format!("-{pid}"), &format!("-{dead}"));
                    fs::rename(&path, base.join(renamed)).unwrap();
                }
            }
            write_dir_atomically(&dir, |t| fs::write(t.join("a.txt"), "next")).unwrap();
            assert_eq!(contents(&dir), "next");
            let left: Vec<_> = fs::read_dir(&base).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(left, vec![std::ffi::OsString::from("out")], "after {last:?}: stale siblings removed");
            fs::remove_dir_all(&base).unwrap();
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_temporary_directory_can_exchange_two_folders_in_one_step() {
        let base = scratch("exchange");
        let (a, b) = (base.join("a"), base.join("b"));
        for (dir, text) in [(&a, "A"), (&b, "B")] {
            fs::create_dir(dir).unwrap();
            fs::write(dir.join("a.txt"), text).unwrap();
        }
        exchange(&a, &b).expect("renameat2(RENAME_EXCHANGE) where the tests run");
        assert_eq!((contents(&a), contents(&b)), ("B".into(), "A".into()));
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_live_processs_temporaries_are_left_alone() {
        let base = scratch("live");
        let dir = base.join("out");
        // PID 1 is always alive: a sibling with it belongs to a write in progress.
        let busy = base.join(".out.tmp-1");
        fs::create_dir(&busy).unwrap();
        write_dir_atomically(&dir, |t| fs::write(t.join("a.txt"), "1")).unwrap();
        assert!(busy.exists(), "a running writer's folder is not removed");
        assert!(fs::read_dir(&base).unwrap().count() == 2);
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn sibling_names_parse_only_for_their_folder() {
        assert_eq!(sibling_pid(".out.tmp-42", "out"), Some(42));
        assert_eq!(sibling_pid(".out.old-7", "out"), Some(7));
        assert_eq!(sibling_pid(".output.tmp-42", "out"), None);
        assert_eq!(sibling_pid(".out.tmp-x", "out"), None);
        assert_eq!(sibling_pid("out", "out"), None);
    }
}
