//! [`BatchWriter`]: where the log lines go. Lines logged while a request is handled are handed
//! over in memory, in a buffer of the logging thread's own, and written in batches by a thread
//! of its own, so a request pays for a copy instead of a system call (and the workers share no
//! lock per line); every other line is written at once, after everything handed over before
//! it.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Write};
use std::mem;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

use super::direct::{render_encoded, Record};

/// How long a line logged during a request may wait in memory, under load, before the writer
/// thread writes it with the lines logged after it. An idle writer thread is woken by the first
/// line and writes it at once.
///
/// Each round of the writer thread wakes it and interrupts a worker; in the demo as deployed
/// (two workers, a load generator on the same two cores), rounds every 5 ms instead of every
/// 1 ms cost the server about 1.5 µs less CPU per request, and longer intervals saved no more
/// (`BENCHMARKS.md`).
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(5);

/// Past this many bytes waiting in a thread's buffer, the writer thread is woken before its
/// interval ends.
const EARLY: usize = 64 * 1024;

/// Past this many bytes waiting in a thread's buffer (the writer is stuck: a full pipe, a slow
/// disk), the thread's next line waits for the writer thread to take them, as a write to a full
/// pipe would: memory stays bounded and no line is dropped.
const LIMIT: usize = 1024 * 1024;

/// A writer for [`Setup::writer`](crate::logging::Setup::writer) and
/// [`MozLogLayer::with_writer`](crate::logging::MozLogLayer::with_writer) that writes lines in
/// batches from a thread of its own (`dockerflow-log`), the way [`init`](crate::logging::init)
/// writes to stdout.
///
/// - A line logged while a request is handled (inside
///   [`RequestSummary`](crate::logging::RequestSummary), the summary line included) is copied
///   into a buffer of the thread that logs it (a worker), which no other worker touches; the
///   writer thread takes every buffer's lines at most [`FLUSH_INTERVAL`] after the first of
///   them and writes them, many lines to a `write` system call. The summary line that
///   [`init`](crate::logging::init) writes is copied as its parts, and the writer thread
///   renders it, redacted, before it writes it. Each thread's lines keep the
///   order it logged them in; within one batch, the lines of one worker come before the next
///   worker's (their `Timestamp`s tell the order across workers). An idle writer thread is
///   woken by a line and writes it at once.
/// - Any other line (start-up, shutdown, background threads, a command that logs and exits) is
///   written at once on the thread that logs it, after every line waiting, so lines never
///   overtake each other and a process that exits right after logging loses nothing.
/// - Each line is written whole by one `write` call, never split or mixed with another. On a
///   pipe, a socket or a terminal a `write` holds at most 4 KiB of lines (a longer line
///   alone), what a pipe takes in one piece, so lines stay whole even on a pipe other
///   processes write to; on a regular file (a `File` given to [`new`](Self::new), or stdout
///   redirected to one), at most 64 KiB, which the kernel appends whole and for a third of the
///   system time of 4 KiB writes.
///   Nothing is dropped: when 1 MiB of a thread's lines is waiting (the output is blocked),
///   its next line waits for the writer thread, as a write to a blocked stdout would.
/// - [`flush`](Self::flush) (and [`logging::flush`](crate::logging::flush) for stdout) returns
///   once every line logged before it is written; [`Dockerflow::serve`](crate::Dockerflow::serve)
///   calls it when the server has stopped. A process killed with `SIGKILL` under load loses the
///   lines of its last 5 ms.
///
/// ```
/// use dockerflow::logging::{BatchWriter, Setup};
///
/// let file = std::fs::File::create(std::env::temp_dir().join("app.log"))?;
/// let writer = BatchWriter::new(file);
/// // Setup::new("my-app").writer(writer.clone()).init()?;
/// writer.flush();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct BatchWriter {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for BatchWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWriter").finish_non_exhaustive()
    }
}

/// What the users of one writer share; dropping the last one writes what is waiting and lets
/// the writer thread end.
struct Handle {
    shared: Arc<Shared>,
}

struct Shared {
    /// Tells this writer's slots apart from other writers' in a thread's list ([`SLOTS`]).
    id: u64,
    state: Mutex<State>,
    /// Wakes the writer thread.
    work: Condvar,
    /// Wakes the threads waiting for a round of the writer thread (a flush, a full slot).
    done: Condvar,
    /// The destination; held while a batch or a line is written to it.
    sink: Mutex<Box<dyn Write + Send>>,
    /// The most one `write` of a batch holds ([`write_size`]).
    write_size: usize,
    /// A slot for each thread that has logged a request's line: the lines it handed over and
    /// the writer thread has not taken yet.
    slots: Mutex<Vec<Arc<Slot>>>,
    /// There is a writer thread (it could be started, and it has not stopped).
    running: AtomicBool,
    /// The writer thread waits for a line, with no deadline: the next line wakes it.
    idle: AtomicBool,
    // Both are read by each line without the state's lock (which the threads would otherwise
    // pass between their cores line after line), and changed with it held, so that a thread
    // waiting on `work` or `done` sees every change.
}

/// One thread's lines waiting for the writer thread. Only that thread adds to them, so their
/// lock stays on its core but for the moment the writer thread takes them.
#[derive(Default)]
struct Slot {
    lines: Mutex<Vec<u8>>,
}

#[derive(Default)]
struct State {
    /// Rounds of the writer thread begun and finished: a round takes every slot's lines and
    /// writes them. A round begun after a line was handed over has written it once finished.
    begun: u64,
    finished: u64,
    /// The round a flush (or a thread whose slot is full) waits for: the writer thread goes
    /// on without waiting for more lines until it is finished.
    wanted: u64,
    /// Threads waiting on `done`.
    waiters: usize,
    /// The last `BatchWriter` is gone: write what is waiting and stop.
    closing: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while a lock is held leaves nothing half-done here: use the data as it is.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The ids of writers ([`Shared::id`]).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's slot of each writer it has logged a request's line to.
    static SLOTS: RefCell<Vec<(u64, Arc<Slot>)>> = const { RefCell::new(Vec::new()) };
}

impl BatchWriter {
    /// Writes the lines to `sink` (stdout, a file, a pipe) from a new writer thread.
    pub fn new(sink: impl Write + Send + 'static) -> Self {
        let file = (&sink as &dyn std::any::Any).downcast_ref::<File>();
        let write_size = write_size(file.and_then(|file| file.metadata().ok()));
        BatchWriter::with_write_size(Box::new(sink), write_size)
    }

    fn with_write_size(sink: Box<dyn Write + Send>, write_size: usize) -> Self {
        let shared = Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            sink: Mutex::new(sink),
            write_size,
            slots: Mutex::new(Vec::new()),
            // Running before the thread starts, which stops when it finds itself not running.
            running: AtomicBool::new(true),
            idle: AtomicBool::new(false),
        });
        let for_thread = Arc::clone(&shared);
        let started = std::thread::Builder::new()
            .name("dockerflow-log".to_owned())
            .spawn(move || for_thread.run());
        if started.is_err() {
            // Without a thread of its own, every line is written at once.
            shared.running.store(false, Ordering::Release);
        }
        let mut live = lock(&LIVE);
        live.retain(|writer| writer.strong_count() > 0);
        live.push(Arc::downgrade(&shared));
        drop(live);
        BatchWriter {
            handle: Arc::new(Handle { shared }),
        }
    }

    /// The writer of stdout that [`init`](crate::logging::init) and
    /// [`MozLogLayer::new`](crate::logging::MozLogLayer::new) use: one for the process.
    pub fn stdout() -> Self {
        STDOUT
            .get_or_init(|| {
                BatchWriter::with_write_size(Box::new(io::stdout()), write_size(stdout_metadata()))
            })
            .clone()
    }

    /// Returns once every line handed over before this call is written (or the writer thread
    /// has stopped).
    pub fn flush(&self) {
        self.handle.shared.flush();
    }

    /// Takes a request's summary line as a line written through
    /// [`make_writer`](MakeWriter::make_writer) is taken, but its parts are handed over, for
    /// the writer thread to render, when a request is being handled; else it is rendered and
    /// written at once.
    pub(crate) fn write_summary(&self, record: &Record<'_>) {
        self.shared().write_entry(&Entry::Summary(record));
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        state.closing = true;
        drop(state);
        self.shared.work.notify_one();
        self.shared.flush();
    }
}

impl Shared {
    /// Hands `entry` over when this thread is handling a request, else writes it at once.
    fn write_entry(&self, entry: &Entry<'_>) {
        if super::context::in_request() {
            self.hand_over(entry);
        } else {
            self.write_now(entry);
        }
    }

    /// Hands an entry over to the writer thread, in this thread's slot, or writes it at once
    /// when there is no writer thread.
    fn hand_over(&self, entry: &Entry<'_>) {
        loop {
            if !self.running.load(Ordering::Acquire) {
                self.write_now(entry);
                return;
            }
            // `None`: the slot is full (the writer is stuck: a full pipe, a slow disk).
            let added = self.with_slot(|slot| {
                let mut lines = lock(&slot.lines);
                if lines.len() >= LIMIT {
                    return None;
                }
                let before = lines.len();
                entry.frame(&mut lines);
                Some((before, lines.len()))
            });
            match added {
                // This thread is ending (its slots are gone): nothing to batch with.
                Err(_) => {
                    self.write_now(entry);
                    return;
                }
                // Wait for a round of the writer thread to take the slot's lines, as a write
                // to a full pipe waits: memory stays bounded and no line is dropped.
                Ok(None) => self.flush(),
                Ok(Some((before, waiting))) => {
                    // The writer thread marks itself idle before it looks at the slots a last
                    // time, and this line was added under the slot's lock: either it saw the
                    // line, or this sees it idle.
                    let early = waiting >= EARLY && before < EARLY;
                    if early || self.idle.load(Ordering::Acquire) {
                        self.wake();
                    }
                    return;
                }
            }
        }
    }

    /// Runs `f` on this thread's slot, made and registered on its first line.
    fn with_slot<R>(&self, f: impl FnOnce(&Slot) -> R) -> Result<R, std::thread::AccessError> {
        SLOTS.try_with(|slots| {
            let mut slots = slots.borrow_mut();
            if let Some((_, slot)) = slots.iter().find(|(id, _)| *id == self.id) {
                return f(slot);
            }
            // The slots of writers gone are held by this list alone.
            slots.retain(|(_, slot)| Arc::strong_count(slot) > 1);
            let slot = Arc::new(Slot::default());
            lock(&self.slots).push(Arc::clone(&slot));
            slots.push((self.id, Arc::clone(&slot)));
            f(&slot)
        })
    }

    /// Ends the writer thread's wait: it is idle, or a slot has [`EARLY`] bytes.
    fn wake(&self) {
        let state = lock(&self.state);
        self.idle.store(false, Ordering::Release);
        drop(state);
        self.work.notify_one();
    }

    /// Takes every slot's lines that wait, one buffer a slot (each thread's lines in the order
    /// it logged them), into `taken`. Each slot gets an empty buffer from `spares` in
    /// exchange: the buffers go round instead of being made anew, and no line is copied again.
    fn take_slots(&self, taken: &mut Vec<Vec<u8>>, spares: &mut Vec<Vec<u8>>) {
        // One pass, each slot locked once. A thread that has ended leaves its slot to this list
        // alone: no line can come into it any more, so once its lines are taken it is let go.
        lock(&self.slots).retain(|slot| {
            let mut lines = lock(&slot.lines);
            if !lines.is_empty() {
                taken.push(mem::replace(&mut *lines, spares.pop().unwrap_or_default()));
            }
            Arc::strong_count(slot) > 1
        });
    }

    /// Writes the buffers `take_slots` took, their entries rendered in `out`, and gives them
    /// back to `spares`, emptied.
    fn write_taken(
        &self,
        sink: &mut dyn Write,
        taken: &mut Vec<Vec<u8>>,
        spares: &mut Vec<Vec<u8>>,
        out: &mut Vec<u8>,
    ) {
        for mut entries in taken.drain(..) {
            out.clear();
            render_entries(&entries, out);
            write_lines(sink, out, self.write_size);
            if entries.capacity() <= LIMIT {
                entries.clear();
                spares.push(entries);
            }
        }
        if out.capacity() > 2 * LIMIT {
            *out = Vec::new();
        }
    }

    /// Any slot holds a line.
    fn any_waiting(&self) -> bool {
        lock(&self.slots)
            .iter()
            .any(|slot| !lock(&slot.lines).is_empty())
    }

    /// Writes `entry` on this thread, after every line waiting in the slots.
    fn write_now(&self, entry: &Entry<'_>) {
        entry.render(|line| {
            // The sink first: a batch the writer thread has taken is written before this line.
            let mut sink = lock(&self.sink);
            let mut taken = Vec::new();
            self.take_slots(&mut taken, &mut Vec::new());
            self.write_taken(&mut **sink, &mut taken, &mut Vec::new(), &mut Vec::new());
            write_lines(&mut **sink, line, self.write_size);
        });
    }

    /// Returns once a round of the writer thread begun after this call has finished: every
    /// line handed over before is written. Without a writer thread, writes them on this one.
    fn flush(&self) {
        let mut state = lock(&self.state);
        if !self.running.load(Ordering::Acquire) {
            drop(state);
            self.write_now(&Entry::Line(&[]));
            return;
        }
        let round = state.begun + 1;
        state.wanted = state.wanted.max(round);
        self.idle.store(false, Ordering::Release);
        self.work.notify_one();
        while self.running.load(Ordering::Acquire) && state.finished < round {
            state.waiters += 1;
            state = self.done.wait(state).unwrap_or_else(|p| p.into_inner());
            state.waiters -= 1;
        }
        if state.finished < round {
            // The writer thread stopped (its sink panicked): what it left is written here.
            drop(state);
            self.write_now(&Entry::Line(&[]));
        }
    }

    /// The writer thread: a round takes every slot's lines and writes them; then it gathers
    /// lines for up to [`FLUSH_INTERVAL`] (a flush, a slot of [`EARLY`] bytes or the last
    /// writer gone ends the wait early), or, when the round found none, waits for a line with
    /// no deadline.
    fn run(&self) {
        let mut taken = Vec::new();
        let mut spares = Vec::new();
        let mut out = Vec::new();
        loop {
            // The sink before the lines, as in `write_now`: what is taken is written first.
            let mut sink = lock(&self.sink);
            let round = {
                let mut state = lock(&self.state);
                state.begun += 1;
                state.begun
            };
            self.take_slots(&mut taken, &mut spares);
            let wrote = !taken.is_empty();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.write_taken(&mut **sink, &mut taken, &mut spares, &mut out);
            }));
            drop(sink);

            let mut state = lock(&self.state);
            state.finished = round;
            // A sink that panics: from now on every line is written at once. The last writer
            // gone: done once a round finds nothing more.
            let stop = outcome.is_err() || (state.closing && !wrote);
            if stop {
                self.running.store(false, Ordering::Release);
            }
            if state.waiters > 0 || stop {
                self.done.notify_all();
            }
            if stop {
                return;
            }
            if state.wanted > state.finished || state.closing {
                continue;
            }
            if wrote {
                // Gather lines for the next write.
                let _ = self.work.wait_timeout(state, FLUSH_INTERVAL);
                continue;
            }
            // Nothing came in a whole interval: wait for the next line, with no deadline.
            // Idle first, then a last look at the slots (a line added meanwhile sees the
            // writer idle, and wakes it).
            self.idle.store(true, Ordering::SeqCst);
            if !self.any_waiting() {
                while self.idle.load(Ordering::Acquire)
                    && !state.closing
                    && state.wanted <= state.finished
                {
                    state = self.work.wait(state).unwrap_or_else(|p| p.into_inner());
                }
            }
            self.idle.store(false, Ordering::Release);
        }
    }
}

/// What a thread hands over: a line, rendered, or a request's summary, which the writer thread
/// renders (the request pays for a copy of its parts, not for the rendering).
enum Entry<'a> {
    Line(&'a [u8]),
    Summary(&'a Record<'a>),
}

/// How an entry is kept in a slot: a byte that tells which, the length of what follows (a
/// `u64`), then the line, or the summary as [`Record::encode`] writes it.
const LINE: u8 = 0;
const SUMMARY: u8 = 1;
const FRAME: usize = 1 + 8;

impl Entry<'_> {
    /// Appends the entry, framed, to a slot's buffer. Copies only: nothing here can panic
    /// while the slot's lock is held.
    fn frame(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; FRAME]);
        out[start] = match self {
            Entry::Line(line) => {
                out.extend_from_slice(line);
                LINE
            }
            Entry::Summary(record) => {
                record.encode(out);
                SUMMARY
            }
        };
        let len = (out.len() - start - FRAME) as u64;
        out[start + 1..start + FRAME].copy_from_slice(&len.to_le_bytes());
    }

    /// Gives the entry's line to `write`, a summary rendered first.
    fn render(&self, write: impl FnOnce(&[u8])) {
        match self {
            Entry::Line(line) => write(line),
            Entry::Summary(record) => record.render_now(write),
        }
    }
}

/// Renders the entries a slot's buffer holds ([`Entry::frame`]) into `out`, one line each:
/// on the writer thread, before they are written.
fn render_entries(mut entries: &[u8], out: &mut Vec<u8>) {
    while let Some((head, rest)) = entries.split_first_chunk::<FRAME>() {
        let len = u64::from_le_bytes(head[1..].try_into().expect("eight bytes"));
        let len = usize::try_from(len).unwrap_or(usize::MAX).min(rest.len());
        let (entry, rest) = rest.split_at(len);
        match head[0] {
            LINE => out.extend_from_slice(entry),
            _ => render_encoded(out, entry),
        }
        entries = rest;
    }
}

static STDOUT: OnceLock<BatchWriter> = OnceLock::new();

/// Every writer made, so that [`flush`] reaches them all.
static LIVE: Mutex<Vec<std::sync::Weak<Shared>>> = Mutex::new(Vec::new());

/// Returns once every line logged before this call is written, by every [`BatchWriter`].
///
/// Seldom needed: it runs by itself when [`Dockerflow::serve`](crate::Dockerflow::serve)
/// returns, when the app's [`RequestSummary`](crate::logging::RequestSummary) is dropped (a
/// server stopping), and when the thread that called [`init`](crate::logging::init) ends (`main`
/// returning). Call it before `std::process::exit` while requests may still be logging.
pub fn flush() {
    let live: Vec<Arc<Shared>> = lock(&LIVE)
        .iter()
        .filter_map(std::sync::Weak::upgrade)
        .collect();
    for shared in live {
        shared.flush();
    }
}

/// Flushes every writer when dropped: kept by the thread that installs the subscriber, so that
/// the lines waiting are written when it ends (`main` returning ends the process).
struct FlushOnExit;

impl Drop for FlushOnExit {
    fn drop(&mut self) {
        flush();
    }
}

thread_local! {
    static FLUSH_ON_EXIT: FlushOnExit = const { FlushOnExit };
}

/// Makes this thread flush every writer when it ends.
pub(crate) fn flush_when_this_thread_ends() {
    FLUSH_ON_EXIT.with(|_| {});
}

/// The most a pipe takes in one piece (`PIPE_BUF` on Linux): a `write` of at most this many
/// bytes is never mixed with another process's writes to the same pipe.
const ATOMIC_WRITE: usize = 4096;

/// The most one `write` to a regular file holds: the kernel appends each `write` whole, and
/// a 64 KiB write costs it a third of what sixteen of 4 KiB do.
const FILE_WRITE: usize = 64 * 1024;

/// How many bytes of whole lines a `write` of a batch may hold: [`FILE_WRITE`] on a regular
/// file, [`ATOMIC_WRITE`] on anything else (a pipe, a socket, a terminal, or unknown).
fn write_size(metadata: Option<std::fs::Metadata>) -> usize {
    match metadata {
        Some(metadata) if metadata.file_type().is_file() => FILE_WRITE,
        _ => ATOMIC_WRITE,
    }
}

/// What stdout is (a pipe, a file), from a duplicate of its descriptor.
#[cfg(unix)]
fn stdout_metadata() -> Option<std::fs::Metadata> {
    use std::os::fd::AsFd;
    let stdout = io::stdout().as_fd().try_clone_to_owned().ok()?;
    File::from(stdout).metadata().ok()
}

#[cfg(not(unix))]
fn stdout_metadata() -> Option<std::fs::Metadata> {
    None
}

/// Writes whole lines in `write` calls of at most `size` bytes, cut after a newline (a longer
/// line alone): batching never makes a line share a pipe write it could be split from. A line
/// that cannot be written has nowhere else to go.
fn write_lines(sink: &mut dyn Write, mut lines: &[u8], size: usize) {
    while !lines.is_empty() {
        let cut = if lines.len() <= size {
            lines.len()
        } else {
            memchr::memrchr(b'\n', &lines[..size])
                .or_else(|| memchr::memchr(b'\n', lines))
                .map_or(lines.len(), |newline| newline + 1)
        };
        let _ = sink.write_all(&lines[..cut]);
        lines = &lines[cut..];
    }
    let _ = sink.flush();
}

/// What [`BatchWriter`] gives the layer for one line.
pub struct LineHandle<'a> {
    shared: &'a Shared,
}

impl std::fmt::Debug for LineHandle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineHandle").finish_non_exhaustive()
    }
}

impl Write for LineHandle<'_> {
    /// Takes `buf` whole, as one line (or several whole lines).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.shared.write_entry(&Entry::Line(buf));
        Ok(buf.len())
    }

    /// Nothing to do: `write` has handed the line over or written it.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = LineHandle<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineHandle {
            shared: self.shared(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::context::{Entered, RequestContext};
    use crate::logging::RequestId;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Marks this thread as handling a request until the guard is dropped.
    fn request() -> Entered {
        RequestContext::new(RequestId::random(), &Default::default()).enter()
    }

    /// A sink that keeps each `write` call apart, and can be held shut.
    #[derive(Clone, Default)]
    struct Calls {
        calls: Arc<Mutex<Vec<Vec<u8>>>>,
        shut: Arc<AtomicBool>,
    }

    impl Write for Calls {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            while self.shut.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
            lock(&self.calls).push(buf.to_vec());
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Calls {
        fn lines(&self) -> Vec<String> {
            let calls = lock(&self.calls);
            let mut lines = Vec::new();
            for call in calls.iter() {
                let text = std::str::from_utf8(call).unwrap();
                assert!(
                    text.ends_with('\n'),
                    "a write call with a partial line: {text:?}"
                );
                lines.extend(text.lines().map(str::to_owned));
            }
            lines
        }

        fn count(&self) -> usize {
            lock(&self.calls).len()
        }

        /// Every call is at most one pipe's atomic write, or a single longer line.
        fn assert_atomic(&self) {
            for call in lock(&self.calls).iter() {
                let lines = call.iter().filter(|b| **b == b'\n').count();
                assert!(
                    call.len() <= ATOMIC_WRITE || lines == 1,
                    "a write of {} bytes and {lines} lines",
                    call.len()
                );
            }
        }
    }

    fn log(writer: &BatchWriter, line: &str) {
        writer
            .make_writer()
            .write_all(format!("{line}\n").as_bytes())
            .unwrap();
    }

    #[test]
    fn request_lines_are_batched_and_other_lines_come_after_them_at_once() {
        let sink = Calls::default();
        let writer = BatchWriter::new(sink.clone());
        // The writer thread is busy: everything logged meanwhile waits for one write.
        sink.shut.store(true, Ordering::Release);
        {
            let _scope = request();
            log(&writer, "first");
            std::thread::sleep(Duration::from_millis(20)); // the writer thread takes it
            for i in 0..100 {
                log(&writer, &format!("request {i}"));
            }
        }
        sink.shut.store(false, Ordering::Release);
        // Not in a request: written at once, after every line waiting.
        log(&writer, "shutting down");
        let lines = sink.lines();
        let mut expected = vec!["first".to_owned()];
        expected.extend((0..100).map(|i| format!("request {i}")));
        expected.push("shutting down".to_owned());
        assert_eq!(lines, expected);
        assert!(
            sink.count() <= 3,
            "{} write calls for 102 lines",
            sink.count()
        );
    }

    #[test]
    fn batches_are_cut_at_4_kib_except_on_a_regular_file() {
        let lines: String = (0..100).map(|i| format!("{i:099}\n")).collect();
        for (size, calls) in [(ATOMIC_WRITE, 3), (FILE_WRITE, 1)] {
            let sink = Calls::default();
            write_lines(&mut sink.clone(), lines.as_bytes(), size);
            assert_eq!(sink.count(), calls, "{size}");
            assert_eq!(sink.lines().len(), 100);
        }
        let path = std::env::temp_dir().join(format!("dockerflow-writer-{}", std::process::id()));
        let file = File::create(&path).unwrap();
        assert_eq!(BatchWriter::new(file).shared().write_size, FILE_WRITE);
        let _ = std::fs::remove_file(&path);
        let null = File::options().write(true).open("/dev/null").unwrap();
        assert_eq!(BatchWriter::new(null).shared().write_size, ATOMIC_WRITE);
        assert_eq!(
            BatchWriter::new(Calls::default()).shared().write_size,
            ATOMIC_WRITE
        );
    }

    #[test]
    fn flush_waits_for_every_line_handed_over() {
        let sink = Calls::default();
        let writer = BatchWriter::new(sink.clone());
        let _scope = request();
        for i in 0..1000 {
            log(&writer, &format!("line {i}"));
        }
        writer.flush();
        assert_eq!(sink.lines().len(), 1000);
        assert!(sink.count() < 1000, "{} write calls", sink.count());
    }

    #[test]
    fn under_concurrency_every_line_is_written_once_whole_and_in_its_threads_order() {
        let sink = Calls::default();
        let writer = BatchWriter::new(sink.clone());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    let payload = "x".repeat(t * 100);
                    for i in 0..5000 {
                        // Most lines as a request's, some as a background thread's.
                        let _scope = (i % 10 != 0).then(request);
                        log(&writer, &format!("{t} {i} {payload}"));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        writer.flush();
        sink.assert_atomic();
        let mut next = [0; 8];
        let lines = sink.lines();
        assert_eq!(lines.len(), 8 * 5000);
        for line in lines {
            let mut parts = line.split(' ');
            let t: usize = parts.next().unwrap().parse().unwrap();
            let i: usize = parts.next().unwrap().parse().unwrap();
            assert_eq!(parts.next().unwrap().len(), t * 100, "{line:.40}");
            assert_eq!(i, next[t], "thread {t}'s lines out of order");
            next[t] += 1;
        }
    }

    #[test]
    fn a_blocked_output_holds_back_requests_instead_of_dropping_lines_or_growing() {
        let sink = Calls::default();
        sink.shut.store(true, Ordering::Release);
        let writer = BatchWriter::new(sink.clone());
        let line = "y".repeat(1000);
        let logged = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let producer = {
            let (writer, line, logged) = (writer.clone(), line.clone(), Arc::clone(&logged));
            std::thread::spawn(move || {
                let _scope = request();
                for _ in 0..5000 {
                    log(&writer, &line);
                    logged.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        // About 1 MiB waits (plus the batch the writer thread holds); the rest is held back.
        let waiting: usize = lock(&writer.shared().slots)
            .iter()
            .map(|slot| lock(&slot.lines).len())
            .sum();
        assert!(
            waiting <= LIMIT + FRAME + line.len() + 1,
            "{waiting} bytes waiting"
        );
        let before = logged.load(Ordering::Relaxed);
        assert!(before < 5000, "the producer was not held back");
        sink.shut.store(false, Ordering::Release);
        producer.join().unwrap();
        writer.flush();
        assert_eq!(sink.lines().len(), 5000);
    }

    #[test]
    fn the_thread_that_installed_logging_writes_what_waits_when_it_ends() {
        let sink = Calls::default();
        sink.shut.store(true, Ordering::Release);
        let writer = BatchWriter::new(sink.clone());
        let thread = {
            let writer = writer.clone();
            std::thread::spawn(move || {
                flush_when_this_thread_ends(); // what `Setup::init` does
                let _scope = request();
                for i in 0..10 {
                    log(&writer, &format!("line {i}"));
                }
            })
        };
        // The output is held shut until the thread is ending: its lines are still waiting.
        std::thread::sleep(Duration::from_millis(20));
        sink.shut.store(false, Ordering::Release);
        thread.join().unwrap();
        assert_eq!(sink.lines().len(), 10, "written before the thread was gone");
    }

    #[test]
    fn the_last_writer_gone_writes_what_waits() {
        let sink = Calls::default();
        let writer = BatchWriter::new(sink.clone());
        {
            let _scope = request();
            for i in 0..10 {
                log(&writer, &format!("line {i}"));
            }
        }
        drop(writer);
        assert_eq!(sink.lines().len(), 10);
    }

    #[test]
    fn an_idle_writer_thread_is_woken_by_each_first_line() {
        let sink = Calls::default();
        let writer = BatchWriter::new(sink.clone());
        for i in 0..300 {
            {
                let _scope = request();
                log(&writer, &format!("line {i}"));
            }
            // No flush: the writer thread, idle between lines, must be woken by each one
            // (a wake-up lost between its last look at the slots and its sleep leaves the
            // line waiting for ever).
            let deadline = std::time::Instant::now() + Duration::from_secs(2);
            while sink.lines().len() <= i {
                assert!(
                    std::time::Instant::now() < deadline,
                    "line {i} was not written"
                );
                std::thread::sleep(Duration::from_micros(50 * (i % 7) as u64));
            }
        }
    }

    #[test]
    fn the_lines_of_a_thread_that_has_ended_are_written_and_its_slot_let_go() {
        let sink = Calls::default();
        let writer = BatchWriter::new(sink.clone());
        sink.shut.store(true, Ordering::Release);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    let _scope = request();
                    for i in 0..100 {
                        log(&writer, &format!("{t} {i}"));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        sink.shut.store(false, Ordering::Release);
        writer.flush();
        assert_eq!(sink.lines().len(), 400);
        writer.flush();
        assert!(
            lock(&writer.shared().slots).is_empty(),
            "the slots of ended threads are kept"
        );
    }
}
