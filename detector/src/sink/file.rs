//! The append-only NDJSON file sink.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{LineSink, LineTarget, QueueLimits, WriteFailure};

/// Size-based rotation: when a line would take the file past `max_bytes`, the file is
/// renamed to `<path>.1` (older ones shift to `.2` … `.keep`, the oldest is removed) and a
/// new file is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// Size past which the file is rotated before the next line.
    pub max_bytes: u64,
    /// How many rotated files to keep (at least 1).
    pub keep: usize,
}

/// How to open a [`FileSink`].
#[derive(Clone, Debug)]
pub struct FileSinkOptions {
    /// The NDJSON file (created if missing; a symlink is refused).
    pub path: PathBuf,
    /// Permission bits of the file; 0640 by default. An existing file with broader bits is
    /// tightened to these (with a warning).
    pub mode: u32,
    /// Size-based rotation; `None` leaves it to logrotate (with [`super::Sink::reopen`]).
    pub rotation: Option<Rotation>,
    /// Retry queue bounds and pacing.
    pub queue: QueueLimits,
}

impl FileSinkOptions {
    /// Defaults: mode 0640, no rotation, default queue limits.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileSinkOptions {
            path: path.into(),
            mode: 0o640,
            rotation: None,
            queue: QueueLimits::default(),
        }
    }
}

/// The file sink: a [`FileTarget`] with the retry queue.
pub type FileSink = LineSink<FileTarget>;

impl FileSink {
    /// Opens (creating if needed) the file for appending.
    pub fn open(opts: FileSinkOptions) -> io::Result<Self> {
        let queue = opts.queue;
        Ok(LineSink::new(FileTarget::open(opts)?, queue))
    }
}

/// An `O_APPEND` file that takes whole lines: one `write(2)` per line; a line the kernel
/// takes only in part (disk full) is cut off again with `ftruncate`, so the file only ever
/// holds whole lines. This assumes we are the file's only writer (the cut goes back by the
/// bytes we wrote).
pub struct FileTarget {
    opts: FileSinkOptions,
    name: String,
    file: File,
    /// Current size of the file, for rotation.
    size: u64,
    /// A partial line could not be cut off: the length to cut back to before anything else.
    cut_to: Option<u64>,
}

impl FileTarget {
    /// Opens the file; fails on a path that is not a regular file.
    pub fn open(opts: FileSinkOptions) -> io::Result<Self> {
        if let Some(r) = opts.rotation
            && (r.keep == 0 || r.max_bytes == 0)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "rotation needs max_bytes > 0 and keep >= 1",
            ));
        }
        let (file, size) = open_append(&opts.path, opts.mode)?;
        let name = opts.path.display().to_string();
        Ok(FileTarget {
            opts,
            name,
            file,
            size,
            cut_to: None,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.opts.path
    }

    fn rotated(&self, i: usize) -> PathBuf {
        let mut p = self.opts.path.clone().into_os_string();
        p.push(format!(".{i}"));
        PathBuf::from(p)
    }

    fn rotate(&mut self, keep: usize) -> io::Result<()> {
        for i in (1..keep).rev() {
            match std::fs::rename(self.rotated(i), self.rotated(i + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&self.opts.path, self.rotated(1))?;
        self.reopen()?;
        tracing::info!(file = %self.name, keep, "rotated alert file");
        Ok(())
    }

    /// Cuts the file back to `len` (a partial line's start).
    fn cut(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.size = len;
        self.cut_to = None;
        Ok(())
    }
}

impl LineTarget for FileTarget {
    fn write_line(&mut self, line: &[u8]) -> Result<(), WriteFailure> {
        let fail = |error| {
            Err(WriteFailure {
                error,
                written: 0,
                cut: 0,
            })
        };
        if let Some(len) = self.cut_to
            && let Err(e) = self.cut(len)
        {
            return fail(e);
        }
        if let Some(r) = self.opts.rotation
            && self.size > 0
            && self.size + line.len() as u64 > r.max_bytes
            && let Err(e) = self.rotate(r.keep)
        {
            // Keep writing to the current file rather than lose alerts.
            tracing::warn!(file = %self.name, error = %e, "alert file rotation failed");
        }
        let mut done = 0;
        while done < line.len() {
            match (&self.file).write(&line[done..]) {
                Ok(0) => return self.undo(done, io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.undo(done, e),
            }
        }
        self.size += line.len() as u64;
        Ok(())
    }

    fn reopen(&mut self) -> io::Result<()> {
        let (file, size) = open_append(&self.opts.path, self.opts.mode)?;
        self.file = file;
        self.size = size;
        // A pending cut belonged to the old file.
        self.cut_to = None;
        Ok(())
    }

    fn name(&self) -> &str {
        &self.name
    }
}

impl FileTarget {
    /// A write failed after `done` bytes of the line went out: cut them off again.
    fn undo(&mut self, done: usize, error: io::Error) -> Result<(), WriteFailure> {
        if done > 0 {
            // O_APPEND wrote at the end: the line began `done` bytes before the end now.
            // If fstat fails, our own record of the size before this line will do.
            let len = match self.file.metadata() {
                Ok(m) => m.len().saturating_sub(done as u64),
                Err(_) => self.size,
            };
            self.cut_to = Some(len);
            let cut = self.cut(len);
            match cut {
                Ok(()) => tracing::debug!(file = %self.name, done, "cut off a partial line"),
                Err(e) => tracing::error!(file = %self.name, error = %e,
                    "cannot cut off a partial line; will retry before the next write"),
            }
        }
        Err(WriteFailure {
            error,
            written: 0,
            cut: done,
        })
    }
}

/// Opens `path` for appending with `mode`, tightening an existing file's broader bits.
fn open_append(path: &Path, mode: u32) -> io::Result<(File, u64)> {
    let file = OpenOptions::new()
        // Read too: a partial last line left by a crash is found and cut off.
        .read(true)
        .append(true)
        .create(true)
        .mode(mode)
        // A root daemon appending through a planted symlink could damage any file.
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a regular file", path.display()),
        ));
    }
    let bits = meta.permissions().mode() & 0o7777;
    if bits & !mode != 0 {
        let tight = bits & mode;
        file.set_permissions(std::fs::Permissions::from_mode(tight))?;
        tracing::warn!(file = %path.display(), from = format!("{bits:o}"),
            to = format!("{tight:o}"), "alert file permissions were broader than allowed; tightened");
    }
    let len = cut_partial_tail(&file, meta.len(), path)?;
    Ok((file, len))
}

/// A writer killed inside a multi-page `write(2)` (kill -9, a crash, power loss) can leave
/// the file ending in part of a line; our next line would be glued to it and both would be
/// lost to a reader. Cuts the file back to just after its last newline; returns the new
/// length.
fn cut_partial_tail(file: &File, len: u64, path: &Path) -> io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return cut_to(file, len, start + i as u64 + 1, path);
        }
        end = start;
    }
    cut_to(file, len, 0, path)
}

fn cut_to(file: &File, len: u64, keep: u64, path: &Path) -> io::Result<u64> {
    if keep != len {
        file.set_len(keep)?;
        tracing::warn!(file = %path.display(), bytes = len - keep,
            "cut off a partial line left at the end of the alert file (a writer died mid-line)");
    }
    Ok(keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (file content, content after the daemon opened it)
    const CASES: &[(&[u8], &[u8])] = &[
        (b"", b""),
        (b"{\"a\":1}\n", b"{\"a\":1}\n"),
        (b"{\"a\":1}\n{\"b\":", b"{\"a\":1}\n"),
        (b"{\"a\":1}\n{\"b\":2}\n{\"c", b"{\"a\":1}\n{\"b\":2}\n"),
        (b"no newline at all", b""),
    ];

    #[test]
    fn open_cuts_a_partial_last_line() {
        for (before, after) in CASES {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("alerts.ndjson");
            std::fs::write(&path, before).unwrap();
            let mut t = FileTarget::open(FileSinkOptions::new(&path)).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), *after, "{before:?}");
            t.write_line(b"{\"new\":1}\n").unwrap();
            let mut want = after.to_vec();
            want.extend_from_slice(b"{\"new\":1}\n");
            assert_eq!(std::fs::read(&path).unwrap(), want, "{before:?}");
        }
    }

    #[test]
    fn a_partial_line_longer_than_the_scan_chunk_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.ndjson");
        let mut text = b"{\"a\":1}\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 200 * 1024));
        std::fs::write(&path, &text).unwrap();
        FileTarget::open(FileSinkOptions::new(&path)).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}\n");
    }
}
