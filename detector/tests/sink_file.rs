//! The NDJSON file and stream sinks: permissions, whole lines, reopen, rotation, a full
//! disk (a tiny tmpfs mounted by the test, root only) and a full pipe.

#[path = "common/ecs_fixture.rs"]
mod ecs_fixture;
#[path = "common/ecs_validate.rs"]
mod ecs_validate;

use std::ffi::CString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use detector::alert::LineEncoder;
use detector::ecs::{EcsDocument, text};
use detector::sink::{
    Delivery, FileSink, FileSinkOptions, QueueLimits, Rotation, Sink, SinkStats, StdoutSink,
};
use detector::testsupport::{Need, require};

/// An alert line numbered `seq`, with `pad` bytes of hostile argv.
fn line(enc: &mut LineEncoder, seq: u64, pad: usize) -> Vec<u8> {
    let mut doc = ecs_fixture::full_alert();
    doc.event.as_mut().unwrap().sequence = Some(seq);
    let p = &mut doc.process.as_mut().unwrap().core;
    let mut big = b"x\xff\n\"\\\x00".to_vec();
    big.resize(pad.max(6), b'a');
    p.args = vec![text(b"ssh"), text(&big)];
    enc.encode(&doc).unwrap().to_vec()
}

/// Parses a file as NDJSON: every line whole, valid JSON, valid ECS; returns the sequences.
fn read_seqs(path: &Path) -> Vec<u64> {
    let data = fs::read(path).unwrap();
    assert!(
        data.is_empty() || data.ends_with(b"\n"),
        "{}: ends in a partial line",
        path.display()
    );
    data.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_slice(l)
                .unwrap_or_else(|e| panic!("{}: bad line ({e})", path.display()));
            let errors = ecs_validate::validate_ecs(&v);
            assert!(errors.is_empty(), "{errors:?}");
            let doc: EcsDocument = serde_json::from_value(v).unwrap();
            doc.event.unwrap().sequence.unwrap()
        })
        .collect()
}

fn opts(path: &Path) -> FileSinkOptions {
    let mut o = FileSinkOptions::new(path);
    o.queue.retry_interval = Duration::ZERO;
    o
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn creates_0640_and_tightens_broader_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("alerts.ndjson");
    drop(FileSink::open(opts(&p)).unwrap());
    assert_eq!(mode(&p) & !0o640, 0, "created with {:o}", mode(&p));

    let q = dir.path().join("wide.ndjson");
    fs::write(&q, b"").unwrap();
    fs::set_permissions(&q, fs::Permissions::from_mode(0o666)).unwrap();
    drop(FileSink::open(opts(&q)).unwrap());
    assert_eq!(mode(&q), 0o640);

    let r = dir.path().join("tight.ndjson");
    fs::write(&r, b"").unwrap();
    fs::set_permissions(&r, fs::Permissions::from_mode(0o600)).unwrap();
    drop(FileSink::open(opts(&r)).unwrap());
    assert_eq!(mode(&r), 0o600, "a tighter file stays as it is");

    assert!(
        FileSink::open(opts(dir.path())).is_err(),
        "a directory is refused"
    );

    let target = dir.path().join("precious");
    fs::write(&target, b"keep").unwrap();
    let link = dir.path().join("link.ndjson");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(FileSink::open(opts(&link)).is_err(), "a symlink is refused");
    assert_eq!(fs::read(&target).unwrap(), b"keep");
}

#[test]
fn appends_whole_valid_lines_for_hostile_input() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("alerts.ndjson");
    fs::write(&p, b"{\"message\":\"kept\"}\n").unwrap();
    let mut sink = FileSink::open(opts(&p)).unwrap();
    let mut enc = LineEncoder::new();
    for (i, pad) in [0usize, 10, 100_000, 3 << 20, 7].into_iter().enumerate() {
        assert_eq!(
            sink.write_line(&line(&mut enc, i as u64, pad)),
            Delivery::Written
        );
    }
    let data = fs::read(&p).unwrap();
    assert!(
        data.starts_with(b"{\"message\":\"kept\"}\n"),
        "existing content kept (append)"
    );
    fs::write(&p, &data[19..]).unwrap();
    assert_eq!(read_seqs(&p), [0, 1, 2, 3, 4]);
    let st = sink.stats();
    assert_eq!((st.written, st.failed, st.queued, st.dropped), (5, 0, 0, 0));
}

#[test]
fn reopen_after_rename_starts_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("alerts.ndjson");
    let old = dir.path().join("alerts.ndjson.old");
    let mut sink = FileSink::open(opts(&p)).unwrap();
    let mut enc = LineEncoder::new();
    sink.write_line(&line(&mut enc, 1, 0));
    fs::rename(&p, &old).unwrap(); // logrotate moves the file
    sink.write_line(&line(&mut enc, 2, 0)); // still the old descriptor
    sink.reopen().unwrap(); // SIGHUP
    sink.write_line(&line(&mut enc, 3, 0));
    assert_eq!(read_seqs(&old), [1, 2]);
    assert_eq!(read_seqs(&p), [3]);
    assert_eq!(mode(&p) & !0o640, 0);
}

#[test]
fn rotates_by_size_keeping_n_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("alerts.ndjson");
    let mut enc = LineEncoder::new();
    let len = line(&mut enc, 0, 0).len() as u64;
    let mut o = opts(&p);
    o.rotation = Some(Rotation {
        max_bytes: 3 * len + len / 2,
        keep: 2,
    });
    let mut sink = FileSink::open(o).unwrap();
    for i in 0..10 {
        assert_eq!(sink.write_line(&line(&mut enc, i, 0)), Delivery::Written);
    }
    // 3 lines a file: 9 in current/.1/.2 …; 0 was rotated out of .2 and lost by design.
    let r = |i| PathBuf::from(format!("{}.{i}", p.display()));
    assert_eq!(read_seqs(&p), [9]);
    assert_eq!(read_seqs(&r(1)), [6, 7, 8]);
    assert_eq!(read_seqs(&r(2)), [3, 4, 5]);
    assert!(!r(3).exists());
    assert!(
        FileSink::open(FileSinkOptions {
            rotation: Some(Rotation {
                max_bytes: 10,
                keep: 0
            }),
            ..opts(&p)
        })
        .is_err()
    );
}

/// A tmpfs of a few pages mounted on a temporary directory; unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts it; the caller has checked for root with the gate.
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let target = CString::new(dir.path().as_os_str().as_bytes()).unwrap();
        let opts = CString::new(format!("size={size},mode=0700")).unwrap();
        // SAFETY: valid NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                opts.as_ptr().cast(),
            )
        };
        assert_eq!(rc, 0, "mount tmpfs: {}", std::io::Error::last_os_error());
        Tmpfs { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let target = CString::new(self.dir.path().as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path string; MNT_DETACH also works if a file is still open.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Fills the filesystem with a filler file until ENOSPC.
fn fill(path: &Path) -> fs::File {
    let mut f = fs::File::create(path).unwrap();
    let chunk = vec![0u8; 4096];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("{e}"),
        }
    }
    f
}

#[test]
fn full_disk_queues_never_writes_partial_lines_and_recovers() {
    // Root: mounting a tmpfs.
    if !require(
        "full_disk_queues_never_writes_partial_lines_and_recovers",
        &[Need::Root],
    ) {
        return;
    }
    let fs_ = Tmpfs::mount("256k");
    let p = fs_.path().join("alerts.ndjson");
    let filler = fs_.path().join("filler");
    let mut sink = FileSink::open(opts(&p)).unwrap();
    let mut enc = LineEncoder::new();
    assert_eq!(sink.write_line(&line(&mut enc, 0, 100)), Delivery::Written);

    let f = fill(&filler);
    // Disk full: nothing fits.
    assert_eq!(sink.write_line(&line(&mut enc, 1, 100)), Delivery::Queued);
    // Free 8 KiB and offer a 20 KB line: the kernel takes part of it (a short write), which
    // the sink must cut off again. Later lines queue behind it (order kept).
    let len = f.metadata().unwrap().len();
    f.set_len(len - 8192).unwrap();
    drop(f);
    sink.flush();
    assert_eq!(read_seqs(&p), [0, 1], "line 1 fits once space is freed");
    assert_eq!(
        sink.write_line(&line(&mut enc, 2, 20_000)),
        Delivery::Queued
    );
    assert_eq!(read_seqs(&p), [0, 1], "no partial line left behind");
    assert_eq!(sink.write_line(&line(&mut enc, 3, 10)), Delivery::Queued);
    let st = sink.stats();
    assert!(
        st.failed >= 2 && st.queued == 2 && st.dropped == 0,
        "{st:?}"
    );
    assert!(st.cut >= 1, "a short write was cut off: {st:?}");

    // Space returns: the queue drains in order, each line once.
    fs::remove_file(&filler).unwrap();
    assert_eq!(sink.retry(), 0);
    assert_eq!(sink.write_line(&line(&mut enc, 4, 10)), Delivery::Written);
    assert_eq!(read_seqs(&p), [0, 1, 2, 3, 4]);
    let st = sink.stats();
    assert_eq!((st.written, st.queued, st.dropped), (5, 0, 0), "{st:?}");
}

#[test]
fn full_disk_with_a_full_queue_drops_and_counts() {
    // Root: mounting a tmpfs.
    if !require(
        "full_disk_with_a_full_queue_drops_and_counts",
        &[Need::Root],
    ) {
        return;
    }
    let fs_ = Tmpfs::mount("128k");
    let p = fs_.path().join("alerts.ndjson");
    let mut o = opts(&p);
    o.queue = QueueLimits {
        max_lines: 3,
        max_bytes: 1 << 20,
        retry_interval: Duration::ZERO,
    };
    let mut sink = FileSink::open(o).unwrap();
    let _f = fill(&fs_.path().join("filler"));
    let mut enc = LineEncoder::new();
    let got: Vec<Delivery> = (0..5)
        .map(|i| sink.write_line(&line(&mut enc, i, 10)))
        .collect();
    use Delivery::*;
    assert_eq!(got, [Queued, Queued, Queued, Dropped, Dropped]);
    let st = sink.stats();
    assert_eq!((st.queued, st.dropped, st.written), (3, 2, 0));
    assert_eq!(
        sink.flush(),
        3,
        "still no space at shutdown: three lines remain queued"
    );
}

#[test]
fn stream_finishes_a_partly_written_line_first() {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(
        unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) },
        0
    );
    // SAFETY: both descriptors were just created and are owned here.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let limits = QueueLimits {
        max_lines: 100,
        max_bytes: 16 << 20,
        retry_interval: Duration::ZERO,
    };
    let mut sink = StdoutSink::from_fd(w, "pipe", limits);
    let mut reader = fs::File::from(r);
    let mut enc = LineEncoder::new();
    // 64 KiB pipe: the 5th 20 KB line is cut short (EAGAIN) and the rest queue.
    let got: Vec<Delivery> = (0..8)
        .map(|i| sink.write_line(&line(&mut enc, i, 20_000)))
        .collect();
    assert!(got.contains(&Delivery::Queued), "{got:?}");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    for _ in 0..1000 {
        match reader.read(&mut buf) {
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        if sink.retry() == 0 && out.iter().filter(|&&b| b == b'\n').count() == 8 {
            break;
        }
    }
    let seqs: Vec<u64> = out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let d: EcsDocument = serde_json::from_slice(l).expect("whole line");
            d.event.unwrap().sequence.unwrap()
        })
        .collect();
    assert_eq!(seqs, (0..8).collect::<Vec<_>>());
    let SinkStats {
        written,
        queued,
        dropped,
        ..
    } = sink.stats();
    assert_eq!((written, queued, dropped), (8, 0, 0));
}
