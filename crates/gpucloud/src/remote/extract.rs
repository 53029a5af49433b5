//! Unpacking a pod's `tar` stream safely: the pod is a third-party host, so what it sends is
//! checked, not trusted.
//!
//! - The stream is unpacked in this process (the `tar` crate) into a **fresh private directory**
//!   (mode 0700) created next to the destination, never into the destination itself.
//! - Every member is checked first: it lies under the name that was asked for (a pod asked for
//!   `results` cannot send `.git/hooks/pre-commit` or `Makefile` beside it), no absolute name,
//!   no `..`, nothing through a link unpacked earlier, no link (symbolic or hard) that points
//!   outside the requested name, no hard link to a link, no device, FIFO or socket. One refused member refuses the whole stream
//!   ([`crate::Error::UnsafeDownload`]), and nothing of it is kept.
//! - Owners are never kept, nor setuid/setgid/sticky bits, nor group- or world-write; no
//!   extended attributes.
//! - The result is then moved into the destination without following any link already there:
//!   an existing link (or file) in the way is replaced, never written through.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Mode bits never kept from an archive: group- and world-write (and, because the `tar` crate
/// keeps only the 0o777 bits, setuid, setgid and sticky are never kept either).
const MODE_MASK: u32 = 0o022;

/// A fresh directory, private to this user (0700), in `parent`, removed when dropped.
pub(crate) struct PrivateDir(PathBuf);

impl PrivateDir {
    pub(crate) fn new_in(parent: &Path) -> std::io::Result<Self> {
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        for _ in 0..16 {
            let path = parent.join(format!(".gpucloud-download-{:016x}", fastrand::u64(..)));
            match builder.create(&path) {
                Ok(()) => return Ok(Self(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "no free temporary name"))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        // remove_dir_all never follows symbolic links: it removes them.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Why a stream was refused.
#[derive(Debug)]
pub(crate) struct Refused(pub(crate) String);

type Result<T> = std::result::Result<T, Refused>;

fn refuse(what: impl Into<String>) -> Refused {
    Refused(what.into())
}

/// The member's name as plain components: refused when absolute or with `..`.
fn member_components(name: &Path) -> Result<Vec<std::ffi::OsString>> {
    let mut parts = Vec::new();
    for component in name.components() {
        match component {
            Component::CurDir => {}
            Component::Normal(part) => parts.push(part.to_os_string()),
            Component::RootDir | Component::Prefix(_) => {
                return Err(refuse(format!("member {} has an absolute name", name.display())));
            }
            Component::ParentDir => return Err(refuse(format!("member {} climbs out with ..", name.display()))),
        }
    }
    Ok(parts)
}

/// Whether a link at depth `depth` (the number of directories between the root and the link)
/// pointing at `target` stays inside the root. Only leading `..` are allowed (each one is a real
/// directory above the link, as every directory here is real), and never more than `depth`; a
/// `..` after a name could climb through another link, so it is refused. Every link being
/// checked so, following any chain of them stays inside.
fn link_stays_inside(depth: usize, target: &Path) -> bool {
    let mut climbs = 0;
    let mut seen_name = false;
    for component in target.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if !seen_name => climbs += 1,
            Component::Normal(_) => seen_name = true,
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    climbs <= depth && target.components().next().is_some()
}

/// Whether `parts` lie under the requested `top` (its first component is `top`).
fn under_top(parts: &[std::ffi::OsString], top: &std::ffi::OsStr) -> bool {
    parts.first().is_some_and(|first| first == top)
}

/// The first component of `parts` under `root` that is a symbolic link, if any.
fn link_on_the_way(root: &Path, parts: &[std::ffi::OsString]) -> Option<PathBuf> {
    let mut on_the_way = root.to_path_buf();
    for part in parts {
        on_the_way.push(part);
        if std::fs::symlink_metadata(&on_the_way).is_ok_and(|m| m.file_type().is_symlink()) {
            return Some(on_the_way.strip_prefix(root).unwrap_or(&on_the_way).to_path_buf());
        }
    }
    None
}

/// Unpacks the tar stream `reader` into `root` (an empty private directory), checking each
/// member (see the [module documentation](self)). `top` is the file name that was asked for:
/// every member lies under it.
pub(crate) fn unpack(reader: impl Read, root: &Path, top: &std::ffi::OsStr) -> Result<()> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(false);
    archive.set_preserve_ownerships(false);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    archive.set_mask(MODE_MASK);
    let io = |e: std::io::Error| refuse(format!("unreadable tar stream: {e}"));
    for entry in archive.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let name = entry.path().map_err(io)?.into_owned();
        let parts = member_components(&name)?;
        if parts.is_empty() {
            continue;
        }
        if !under_top(&parts, top) {
            return Err(refuse(format!(
                "member {} is not under {} (the name asked for)",
                name.display(),
                Path::new(top).display()
            )));
        }
        // Nothing may go through a link: every directory on the way is a real one (or new).
        if let Some(link) = link_on_the_way(root, &parts) {
            return Err(refuse(format!(
                "member {} goes through (or replaces) the link {}",
                name.display(),
                link.display()
            )));
        }
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry.link_name().map_err(io)?.map(std::borrow::Cow::into_owned).unwrap_or_default();
            let inside = if kind.is_symlink() {
                // Counted from the requested name, not the private root: a link may climb to
                // `top` but not beside it. `top` itself as a link points nowhere we keep.
                parts.len() >= 2 && link_stays_inside(parts.len() - 2, &target)
            } else {
                // A hard link names another member, from the root: under `top`, reached through
                // no link, and not itself a link (a hard link to a symbolic link is a copy of it
                // at another depth, where its relative target would point elsewhere).
                member_components(&target).is_ok_and(|t| {
                    under_top(&t, top)
                        && link_on_the_way(root, &t).is_none()
                        && std::fs::symlink_metadata(root.join(t.iter().collect::<PathBuf>()))
                            .is_ok_and(|m| !m.file_type().is_symlink())
                })
            };
            if kind.is_symlink() && parts.len() == 1 {
                return Err(refuse(format!(
                    "{} is itself a link (to {}): download what it points to",
                    name.display(),
                    target.display()
                )));
            }
            if !inside {
                return Err(refuse(format!(
                    "link {} points outside {} ({})",
                    name.display(),
                    Path::new(top).display(),
                    target.display()
                )));
            }
        } else if !(kind.is_file() || kind.is_dir() || kind == tar::EntryType::Continuous) {
            return Err(refuse(format!(
                "member {} is a {kind:?} (only files, directories and links are unpacked)",
                name.display()
            )));
        }
        if !entry.unpack_in(root).map_err(|e| refuse(format!("unpacking {}: {e}", name.display())))? {
            return Err(refuse(format!("member {} was refused by the unpacker", name.display())));
        }
    }
    Ok(())
}

/// Moves everything in `from` into `to` (created if missing), merging directories, replacing
/// files and links in the way, and never following a link that already exists under `to`. A
/// local directory is never replaced by a file, nor a local file by a directory (that would
/// delete what the user had there): such a download is refused before anything moves.
pub(crate) fn move_into(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some((path, what)) = kind_conflict(from, to)? {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} {what}: not replaced (move it away, or download elsewhere)", path.display()),
        ));
    }
    merge_into(from, to)
}

/// The first path under `to` where the download would put a file in place of a directory, or
/// a directory in place of a file (links are replaced, never followed: no conflict).
fn kind_conflict(from: &Path, to: &Path) -> std::io::Result<Option<(PathBuf, &'static str)>> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let source_is_dir = entry.file_type()?.is_dir();
        let Ok(existing) = std::fs::symlink_metadata(&target) else { continue };
        if existing.is_dir() && source_is_dir {
            if let Some(conflict) = kind_conflict(&entry.path(), &target)? {
                return Ok(Some(conflict));
            }
        } else if existing.is_dir() {
            return Ok(Some((target, "is a directory here and a file in the download")));
        } else if existing.is_file() && source_is_dir {
            return Ok(Some((target, "is a file here and a directory in the download")));
        }
    }
    Ok(None)
}

fn merge_into(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let source_is_dir = entry.file_type()?.is_dir();
        match std::fs::symlink_metadata(&target) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::rename(&source, &target)?,
            Err(e) => return Err(e),
            Ok(existing) if existing.is_dir() && source_is_dir => merge_into(&source, &target)?,
            Ok(existing) if existing.is_dir() => {
                // Checked before anything moved ([`kind_conflict`]); changed since: refused.
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} is a directory here and a file in the download: not replaced", target.display()),
                ));
            }
            Ok(_) => {
                // A file replaced by a file, or a link (never followed) by anything.
                std::fs::remove_file(&target)?;
                std::fs::rename(&source, &target)?;
            }
        }
    }
    Ok(())
}

/// A blocking reader fed with chunks from an async task (the bridge between the SSH stream and
/// the `tar` crate's blocking reader).
pub(crate) struct ChannelReader {
    chunks: tokio::sync::mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl ChannelReader {
    pub(crate) fn new(chunks: tokio::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        Self { chunks, current: Vec::new(), at: 0 }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            match self.chunks.blocking_recv() {
                Some(chunk) => {
                    self.current = chunk;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        build(&mut builder);
        builder.into_inner().unwrap()
    }

    fn file(builder: &mut tar::Builder<Vec<u8>>, name: &str, body: &[u8], mode: u32) {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(mode);
        header.set_entry_type(tar::EntryType::Regular);
        // Written raw: `set_path` itself refuses `..` and absolute names.
        let bytes = name.as_bytes();
        header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        header.set_cksum();
        builder.append(&header, body).unwrap();
    }

    fn link(builder: &mut tar::Builder<Vec<u8>>, name: &str, target: &str) {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        builder.append_link(&mut header, name, target).unwrap();
    }

    fn hard_link(builder: &mut tar::Builder<Vec<u8>>, name: &str, target: &str) {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Link);
        header.set_size(0);
        header.set_mode(0o644);
        builder.append_link(&mut header, name, target).unwrap();
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gpucloud-extract-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_hostile_stream_writes_nothing_outside() {
        let dir = scratch("hostile");
        let victim = dir.join("victim");
        std::fs::create_dir_all(&victim).unwrap();
        let streams = [
            // A link out, then a file through it (the audit's R6).
            archive(|b| {
                link(b, "results", victim.to_str().unwrap());
                file(b, "results/authorized_keys", b"attacker", 0o644);
            }),
            archive(|b| link(b, "results", "../../victim")),
            archive(|b| {
                link(b, "results/here", ".");
                link(b, "results/x", "here/../..");
            }),
            archive(|b| file(b, "../victim/escaped", b"x", 0o644)),
            archive(|b| file(b, "/tmp/absolute", b"x", 0o644)),
            // Asked for `results`, the pod sends files beside it (a git hook, a Makefile).
            archive(|b| {
                file(b, "results/ok", b"x", 0o644);
                file(b, ".git/hooks/pre-commit", b"#!/bin/sh\nevil\n", 0o755);
            }),
            archive(|b| file(b, "Makefile", b"all:\n\tevil\n", 0o644)),
            // Links that climb out of `results` into the directory the user downloads into.
            archive(|b| link(b, "results/mk", "../Makefile")),
            archive(|b| link(b, "results", "elsewhere")),
            archive(|b| {
                file(b, "Makefile", b"x", 0o644);
                hard_link(b, "results/h", "Makefile");
            }),
            // A hard link to an in-tree link deep down: the copy sits higher, so its relative
            // target would point out.
            archive(|b| {
                link(b, "results/x/y/l", "../../run.sh");
                hard_link(b, "results/h", "results/x/y/l");
            }),
            // A hard link reached through a link.
            archive(|b| {
                file(b, "results/x/f", b"x", 0o644);
                link(b, "results/via", "x");
                hard_link(b, "results/h", "results/via/f");
            }),
        ];
        for (i, stream) in streams.iter().enumerate() {
            let root = PrivateDir::new_in(&dir).unwrap();
            let refused = unpack(&stream[..], root.path(), "results".as_ref());
            assert!(refused.is_err(), "stream {i}: {refused:?}");
        }
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0, "nothing written outside");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["victim"], "nothing left beside the victim");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_local_directory_is_never_replaced_by_a_file_nor_a_file_by_a_directory() {
        let dir = scratch("kinds");
        let dest = dir.join("dest");
        std::fs::create_dir_all(dest.join("results/precious/sub")).unwrap();
        std::fs::write(dest.join("results/precious/sub/thesis.txt"), "years of work").unwrap();
        std::fs::write(dest.join("results/notes"), "mine").unwrap();
        for (stream, conflict) in [
            (archive(|b| file(b, "results/precious", b"pod's file", 0o644)), "results/precious"),
            (archive(|b| file(b, "results/notes/x", b"pod's dir", 0o644)), "results/notes"),
        ] {
            let root = PrivateDir::new_in(&dest).unwrap();
            unpack(&stream[..], root.path(), "results".as_ref()).unwrap();
            let refused = move_into(root.path(), &dest).unwrap_err();
            assert!(refused.to_string().contains(conflict), "{refused}");
        }
        assert_eq!(std::fs::read_to_string(dest.join("results/precious/sub/thesis.txt")).unwrap(), "years of work");
        assert_eq!(std::fs::read_to_string(dest.join("results/notes")).unwrap(), "mine");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn modes_are_tamed_links_inside_kept_and_existing_links_replaced_not_followed() {
        let dir = scratch("tame");
        let stream = archive(|b| {
            file(b, "results/run.sh", b"#!/bin/sh\n", 0o4777);
            link(b, "results/latest", "run.sh");
            link(b, "results/sub/up", "../run.sh");
            hard_link(b, "results/copy.sh", "results/run.sh");
        });
        let dest = dir.join("dest");
        let outside = dir.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::create_dir_all(&dest).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&outside, dest.join("results")).unwrap();
        let root = PrivateDir::new_in(&dest).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(root.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "the temporary directory is private");
        }
        unpack(&stream[..], root.path(), "results".as_ref()).unwrap();
        move_into(root.path(), &dest).unwrap();
        drop(root);
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "the planted link was replaced, not followed");
        assert_eq!(std::fs::read(dest.join("results/latest")).unwrap(), b"#!/bin/sh\n");
        assert_eq!(std::fs::read(dest.join("results/sub/up")).unwrap(), b"#!/bin/sh\n");
        assert_eq!(std::fs::read(dest.join("results/copy.sh")).unwrap(), b"#!/bin/sh\n", "hard links inside kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dest.join("results/run.sh")).unwrap().permissions().mode();
            assert_eq!(mode & 0o7777, 0o755, "no setuid, no group or world write");
        }
        let names: Vec<_> = std::fs::read_dir(&dest).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["results"], "the temporary directory is gone");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
