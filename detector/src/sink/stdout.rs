//! The stdout sink.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::{LineSink, LineTarget, QueueLimits, WriteFailure};

/// The stdout sink: lines to file descriptor 1, with the retry queue.
pub type StdoutSink = LineSink<FdTarget>;

impl StdoutSink {
    /// A sink on the process's stdout.
    pub fn stdout() -> Self {
        LineSink::new(
            FdTarget {
                fd: Fd::Stdout,
                name: "stdout".into(),
            },
            QueueLimits::default(),
        )
    }

    /// A sink on another stream (a pipe, a socket): owned and closed with the sink.
    pub fn from_fd(fd: OwnedFd, name: &str, limits: QueueLimits) -> Self {
        LineSink::new(
            FdTarget {
                fd: Fd::Owned(fd),
                name: name.into(),
            },
            limits,
        )
    }
}

enum Fd {
    Stdout,
    Owned(OwnedFd),
}

/// A stream file descriptor. Bytes written to a stream cannot be taken back, so a line
/// written in part is reported as such and its remainder goes out before anything else.
pub struct FdTarget {
    fd: Fd,
    name: String,
}

impl FdTarget {
    fn raw(&self) -> BorrowedFd<'_> {
        match &self.fd {
            // SAFETY: fd 1 is open for the life of the process (we never close it).
            Fd::Stdout => unsafe { BorrowedFd::borrow_raw(libc::STDOUT_FILENO) },
            Fd::Owned(fd) => fd.as_fd(),
        }
    }
}

impl LineTarget for FdTarget {
    fn write_line(&mut self, line: &[u8]) -> Result<(), WriteFailure> {
        let fd = self.raw().as_raw_fd();
        let mut done = 0;
        while done < line.len() {
            let rest = &line[done..];
            // SAFETY: `fd` is open (borrowed above) and `rest` is a valid, initialized slice.
            let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
            if n > 0 {
                done += n as usize;
                continue;
            }
            let error = if n == 0 {
                io::ErrorKind::WriteZero.into()
            } else {
                io::Error::last_os_error()
            };
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(WriteFailure {
                error,
                written: done,
                cut: 0,
            });
        }
        Ok(())
    }

    fn reopen(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn name(&self) -> &str {
        &self.name
    }
}
