//! Stdin for `--headless`, one line at a time and in lockstep with the loop that handles it.
//!
//! The reader runs on a plain thread, not tokio's blocking pool: a read that never returns
//! (a terminal, an open pipe) must not hold up the runtime's shutdown. It reads the next
//! line only after the loop has acknowledged the previous one, so each line's output is
//! printed before the next line is read, as the scripting contract says.

use std::io::BufRead;

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

/// The loop's side: the lines, and the acknowledgement that lets the next one be read.
pub struct StdinLines {
    lines: mpsc::Receiver<StdinLine>,
    ack: std::sync::mpsc::SyncSender<()>,
    eof: bool,
}

impl StdinLines {
    /// Starts the reader thread on the process's stdin.
    pub fn spawn() -> std::io::Result<StdinLines> {
        Self::spawn_on(std::io::BufReader::new(std::io::stdin()))
    }

    /// Starts the reader thread on `input`.
    pub fn spawn_on(input: impl BufRead + Send + 'static) -> std::io::Result<StdinLines> {
        let (tx, lines) = mpsc::channel(1);
        let (ack, acks) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("headless-stdin".into())
            .spawn(move || read_in_lockstep(input, tx, acks))?;
        Ok(StdinLines {
            lines,
            ack,
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

    /// The line from [`StdinLines::next`] is handled and its output written: read the next.
    pub fn done(&self) {
        // The channel holds one ack and the reader waits for each one before it reads on,
        // so a full channel already lets it read; the thread is gone only after EOF,
        // when nothing is waiting. Either way there is nothing to lose here.
        let _ = self.ack.try_send(());
    }
}

fn read_in_lockstep(
    mut input: impl BufRead,
    tx: mpsc::Sender<StdinLine>,
    acks: std::sync::mpsc::Receiver<()>,
) {
    let mut number = 0u64;
    let mut buf = Vec::new();
    loop {
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
        // Lockstep: the next read waits until the loop has printed this line's output.
        if acks.recv().is_err() {
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
        let mut lines = StdinLines::spawn_on(input).unwrap();
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
}
