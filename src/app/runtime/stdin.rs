//! Stdin for `--headless`, in step with the loop that handles it.
//!
//! The reader runs on a plain thread, not tokio's blocking pool: a read that never returns
//! (a terminal, an open pipe) must not hold up the runtime's shutdown. It reads at most a
//! fixed number of lines ahead of the loop (its *read-ahead*): each line the loop
//! acknowledges lets it read one more. With a read-ahead of 1 it reads the next line only
//! once the previous one is handled; the headless loop uses more, so piped lines cross
//! threads without one wake-up each (it still handles commands strictly in order).

use std::io::BufRead;
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::mpsc;

/// One item from stdin.
#[derive(Debug, PartialEq, Eq)]
pub enum StdinLine {
    /// A line, without its line ending.
    Line(String),
    /// A line that is not UTF-8 (its number, from 1).
    NotUtf8(u64),
    /// End of input (or a read error, which ends it too).
    Eof,
}

/// Lines the reader may still read before the loop acknowledges another.
#[derive(Default)]
struct Credit {
    left: Mutex<usize>,
    more: Condvar,
}

impl Credit {
    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        self.left.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a credit and takes it.
    fn take(&self) {
        let mut left = self.lock();
        while *left == 0 {
            left = self.more.wait(left).unwrap_or_else(|p| p.into_inner());
        }
        *left -= 1;
    }

    fn give(&self) {
        let mut left = self.lock();
        *left += 1;
        // Only a reader that found none waits.
        if *left == 1 {
            self.more.notify_one();
        }
    }
}

/// The loop's side: the lines, and the acknowledgement that lets the next one be read.
pub struct StdinLines {
    lines: mpsc::Receiver<StdinLine>,
    credit: Arc<Credit>,
    eof: bool,
}

impl StdinLines {
    /// Starts the reader thread on the process's stdin, reading up to `read_ahead` lines
    /// ahead of the loop.
    pub fn spawn(read_ahead: usize) -> std::io::Result<StdinLines> {
        Self::spawn_on(std::io::BufReader::new(std::io::stdin()), read_ahead)
    }

    /// Starts the reader thread on `input`, reading up to `read_ahead` (at least 1) lines
    /// ahead of the loop.
    pub fn spawn_on(
        input: impl BufRead + Send + 'static,
        read_ahead: usize,
    ) -> std::io::Result<StdinLines> {
        let read_ahead = read_ahead.max(1);
        // Room for every line read ahead: the reader never blocks on the channel.
        let (tx, lines) = mpsc::channel(read_ahead);
        let credit = Arc::new(Credit::default());
        *credit.lock() = read_ahead;
        let theirs = credit.clone();
        std::thread::Builder::new()
            .name("headless-stdin".into())
            .spawn(move || read_ahead_of(input, tx, &theirs))?;
        Ok(StdinLines {
            lines,
            credit,
            eof: false,
        })
    }

    /// The next line; [`StdinLine::Eof`] once, then pending forever (so a `select!` arm
    /// can stay in place). Call [`StdinLines::done`] after handling a line. Cancel-safe.
    pub async fn next(&mut self) -> StdinLine {
        if self.eof {
            return std::future::pending().await;
        }
        match self.lines.recv().await {
            Some(StdinLine::Eof) | None => {
                self.eof = true;
                StdinLine::Eof
            }
            Some(line) => line,
        }
    }

    /// The line from [`StdinLines::next`] is handled (or taken in hand): one more may be
    /// read.
    pub fn done(&self) {
        self.credit.give();
    }
}

fn read_ahead_of(mut input: impl BufRead, tx: mpsc::Sender<StdinLine>, credit: &Credit) {
    let mut number = 0u64;
    let mut buf = Vec::new();
    loop {
        // In step: past its read-ahead, the next read waits until the loop handled a line.
        credit.take();
        buf.clear();
        let item = match input.read_until(b'\n', &mut buf) {
            Ok(0) => StdinLine::Eof,
            Ok(_) => {
                number += 1;
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                match String::from_utf8(std::mem::take(&mut buf)) {
                    Ok(s) => StdinLine::Line(s),
                    Err(_) => StdinLine::NotUtf8(number),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading stdin failed; treating it as the end");
                StdinLine::Eof
            }
        };
        let last = item == StdinLine::Eof;
        if tx.blocking_send(item).is_err() || last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_come_one_at_a_time_then_eof() {
        let input = std::io::Cursor::new(b"one\r\ntwo\n\xff\xfe\nlast".to_vec());
        let mut lines = StdinLines::spawn_on(input, 1).unwrap();
        assert_eq!(lines.next().await, StdinLine::Line("one".into()));
        // Not acknowledged: the reader has not read on.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(lines.lines.try_recv().is_err());
        lines.done();
        assert_eq!(lines.next().await, StdinLine::Line("two".into()));
        lines.done();
        assert_eq!(lines.next().await, StdinLine::NotUtf8(3));
        lines.done();
        assert_eq!(lines.next().await, StdinLine::Line("last".into()));
        lines.done();
        assert_eq!(lines.next().await, StdinLine::Eof);
        let again = tokio::time::timeout(std::time::Duration::from_millis(20), lines.next());
        assert!(again.await.is_err(), "EOF is reported once");
    }

    #[tokio::test]
    async fn a_read_ahead_of_three_reads_three_lines_then_waits() {
        let input = std::io::Cursor::new(b"1\n2\n3\n4\n5\n".to_vec());
        let mut lines = StdinLines::spawn_on(input, 3).unwrap();
        for n in ["1", "2", "3"] {
            assert_eq!(lines.next().await, StdinLine::Line(n.into()));
        }
        // None acknowledged: the fourth is not read.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(lines.lines.try_recv().is_err());
        lines.done();
        assert_eq!(lines.next().await, StdinLine::Line("4".into()));
        lines.done();
        lines.done();
        assert_eq!(lines.next().await, StdinLine::Line("5".into()));
        assert_eq!(lines.next().await, StdinLine::Eof);
    }
}
