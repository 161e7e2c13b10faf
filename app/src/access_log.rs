//! One JSON line per request on stdout: what CloudWatch Logs ingests from the container.
//!
//! `{"time":"...","remote":"10.0.1.7:51234","method":"GET","path":"/","status":200,"bytes":612,"micros":14,"ua":"..."}`
//!
//! Lines are appended to an in-memory buffer and written in batches: when the buffer passes
//! [`BATCH_BYTES`], and every [`FLUSH_EVERY`] by a background thread, so a quiet server's lines
//! still appear within a quarter second while a busy one makes one `write` per few hundred
//! requests instead of one per request. Lifecycle events (listening, draining, stopped) are
//! written at once. A failed write (stdout closed) is dropped: logging never stops the server.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock;

/// Write the buffer out once it holds this much.
pub const BATCH_BYTES: usize = 32 * 1024;
/// And at least this often.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Longer user agents are cut: a log line stays bounded whatever the client sends.
const MAX_USER_AGENT: usize = 256;

/// The access log; share it with `Arc`.
pub struct AccessLog {
    pending: Mutex<Vec<u8>>,
    /// The buffer last written out, kept for the next swap: no allocation per batch.
    spare: Mutex<Vec<u8>>,
    sink: Mutex<Box<dyn Write + Send>>,
}

/// One request, as logged.
pub struct Entry<'a> {
    pub remote: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub bytes: usize,
    pub micros: u64,
    pub user_agent: Option<&'a [u8]>,
}

impl AccessLog {
    /// A log writing to `sink`.
    pub fn new(sink: Box<dyn Write + Send>) -> Arc<AccessLog> {
        Arc::new(AccessLog {
            pending: Mutex::new(Vec::with_capacity(BATCH_BYTES * 2)),
            spare: Mutex::new(Vec::with_capacity(BATCH_BYTES * 2)),
            sink: Mutex::new(sink),
        })
    }

    /// The process's log: stdout, flushed by a background thread every [`FLUSH_EVERY`].
    pub fn stdout() -> Arc<AccessLog> {
        let log = AccessLog::new(Box::new(std::io::stdout()));
        let flusher = Arc::clone(&log);
        // Detached on purpose: it lives as long as the process; shutdown flushes explicitly.
        let spawned = std::thread::Builder::new().name("access-log".into()).spawn(move || {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                flusher.flush();
            }
        });
        if spawned.is_err() {
            eprintln!("app: cannot start the access-log flusher; log lines are written per batch only");
        }
        log
    }

    /// Appends the line for one request.
    pub fn record(&self, entry: &Entry<'_>) {
        thread_local! {
            static LINE: std::cell::RefCell<String> = std::cell::RefCell::new(String::with_capacity(256));
        }
        LINE.with(|line| {
            let mut line = line.borrow_mut();
            line.clear();
            format_entry(&mut line, entry);
            let full = {
                let mut pending = lock(&self.pending);
                pending.extend_from_slice(line.as_bytes());
                (pending.len() >= BATCH_BYTES).then(|| self.swap_out(&mut pending))
            };
            if let Some(batch) = full {
                self.write_batch(batch);
            }
        });
    }

    /// Writes a lifecycle line now: `{"time":"...","event":"<event>",<fields>}`, the fields of
    /// the JSON object `fields` (`json!({"addr": "0.0.0.0:8080"})`, or `Value::Null` for none)
    /// written by serde, so every value is escaped as JSON requires.
    pub fn event(&self, event: &str, fields: serde_json::Value) {
        let mut line = String::with_capacity(128);
        line.push_str("{\"time\":\"");
        clock::now_rfc3339(&mut line);
        line.push_str("\",\"event\":");
        line.push_str(&serde_json::Value::from(event).to_string());
        if let serde_json::Value::Object(fields) = fields {
            for (name, value) in fields {
                line.push(',');
                line.push_str(&serde_json::Value::from(name).to_string());
                line.push(':');
                line.push_str(&value.to_string());
            }
        }
        line.push_str("}\n");
        let batch = {
            let mut pending = lock(&self.pending);
            pending.extend_from_slice(line.as_bytes());
            self.swap_out(&mut pending)
        };
        self.write_batch(batch);
    }

    /// Writes out whatever is buffered.
    pub fn flush(&self) {
        let batch = {
            let mut pending = lock(&self.pending);
            if pending.is_empty() {
                return;
            }
            self.swap_out(&mut pending)
        };
        self.write_batch(batch);
    }

    /// Takes the pending lines, leaving the spare (empty) buffer in their place.
    fn swap_out(&self, pending: &mut Vec<u8>) -> Vec<u8> {
        let spare = std::mem::take(&mut *lock(&self.spare));
        std::mem::replace(pending, spare)
    }

    /// Writes a batch, then keeps its buffer as the next spare.
    fn write_batch(&self, mut batch: Vec<u8>) {
        {
            let mut sink = lock(&self.sink);
            // A closed stdout must not take the server down: the line is lost, the request is not.
            let _ = sink.write_all(&batch).and_then(|()| sink.flush());
        }
        batch.clear();
        let mut spare = lock(&self.spare);
        if spare.capacity() < batch.capacity() {
            *spare = batch;
        }
    }
}

/// A poisoned lock only means a panic elsewhere mid-append; the buffer is still bytes.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn format_entry(line: &mut String, entry: &Entry<'_>) {
    line.push_str("{\"time\":\"");
    clock::now_rfc3339(line);
    line.push_str("\",\"remote\":\"");
    escape_json(line, entry.remote);
    line.push_str("\",\"method\":\"");
    escape_json(line, entry.method);
    line.push_str("\",\"path\":\"");
    escape_json(line, entry.path);
    line.push_str("\",\"status\":");
    push_number(line, u64::from(entry.status));
    line.push_str(",\"bytes\":");
    push_number(line, entry.bytes as u64);
    line.push_str(",\"micros\":");
    push_number(line, entry.micros);
    if let Some(user_agent) = entry.user_agent {
        let user_agent = &user_agent[..user_agent.len().min(MAX_USER_AGENT)];
        line.push_str(",\"ua\":\"");
        escape_json(line, &String::from_utf8_lossy(user_agent));
        line.push('"');
    }
    line.push_str("}\n");
}

fn push_number(line: &mut String, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    for &digit in &digits[start..] {
        line.push(char::from(digit));
    }
}

/// Appends `text` as the inside of a JSON string.
pub fn escape_json(out: &mut String, text: &str) {
    if !text.bytes().any(|byte| byte < 0x20 || byte == b'"' || byte == b'\\') {
        out.push_str(text);
        return;
    }
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            control if (control as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", control as u32)),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn entry(path: &str) -> Entry<'_> {
        Entry {
            remote: "127.0.0.1:5000",
            method: "GET",
            path,
            status: 200,
            bytes: 612,
            micros: 7,
            user_agent: Some(b"wrk \"quoted\""),
        }
    }

    #[test]
    fn escapes_json_strings() {
        let check = |input: &str, expect: &str| {
            let mut out = String::new();
            escape_json(&mut out, input);
            assert_eq!(out, expect);
        };
        check("/plain", "/plain");
        check("a\"b\\c", "a\\\"b\\\\c");
        check("line\nbreak\u{1}", "line\\nbreak\\u0001");
        check("ünïcode", "ünïcode");
    }

    #[test]
    fn formats_numbers() {
        let check = |value: u64, expect: &str| {
            let mut out = String::new();
            push_number(&mut out, value);
            assert_eq!(out, expect);
        };
        check(0, "0");
        check(7, "7");
        check(1_234_567, "1234567");
        check(u64::MAX, "18446744073709551615");
    }

    #[test]
    fn buffers_until_flushed_then_writes_valid_lines() {
        let sink = Shared::default();
        let log = AccessLog::new(Box::new(sink.clone()));
        log.record(&entry("/"));
        assert!(sink.0.lock().unwrap().is_empty(), "one small line must stay buffered");
        log.flush();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.starts_with("{\"time\":\""), "{text}");
        assert!(
            text.ends_with(
                "\",\"remote\":\"127.0.0.1:5000\",\"method\":\"GET\",\"path\":\"/\",\"status\":200,\"bytes\":612,\"micros\":7,\"ua\":\"wrk \\\"quoted\\\"\"}\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn writes_a_full_batch_without_waiting() {
        let sink = Shared::default();
        let log = AccessLog::new(Box::new(sink.clone()));
        let mut count = 0;
        while sink.0.lock().unwrap().is_empty() {
            log.record(&entry("/"));
            count += 1;
            assert!(count < 10_000, "the batch never went out");
        }
        let written = sink.0.lock().unwrap().len();
        assert!(written >= BATCH_BYTES);
    }

    #[test]
    fn events_are_written_at_once() {
        let sink = Shared::default();
        let log = AccessLog::new(Box::new(sink.clone()));
        log.event("listening", serde_json::json!({"addr": "0.0.0.0:8080"}));
        log.event("accept_error", serde_json::json!({"error": "a \"quoted\"\nline"}));
        log.event("stopped", serde_json::Value::Null);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("\"event\":\"listening\",\"addr\":\"0.0.0.0:8080\"}\n"), "{text}");
        assert!(text.contains("\"event\":\"accept_error\",\"error\":\"a \\\"quoted\\\"\\nline\"}\n"), "{text}");
        assert!(text.contains("\"event\":\"stopped\"}\n"), "{text}");
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|error| panic!("{line}: {error}"));
        }
    }
}
