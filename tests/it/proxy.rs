//! A TCP proxy for fault injection between drctl and a real object store: it forwards bytes
//! until told to stall (stop forwarding, keep every connection open: a store that hangs), or
//! cuts any connection whose request bytes contain a marker (a write that always fails), or
//! stalls by itself once it has forwarded so many response bytes (a source that starts to
//! stream, then hangs).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Proxy {
    pub addr: String,
    stalled: Arc<AtomicBool>,
    cut_on: Arc<Mutex<Option<Vec<u8>>>>,
    answered: Arc<Answered>,
}

/// Response bytes forwarded so far, and how many to forward before stalling.
#[derive(Default)]
struct Answered {
    bytes: AtomicUsize,
    stall_at: AtomicUsize,
}

impl Proxy {
    /// Listen on a loopback port, forwarding to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stalled = Arc::new(AtomicBool::new(false));
        let cut_on: Arc<Mutex<Option<Vec<u8>>>> = Arc::new(Mutex::new(None));
        let answered = Arc::new(Answered::default());
        answered.stall_at.store(usize::MAX, Ordering::SeqCst);
        let (up, s, c) = (upstream.to_string(), stalled.clone(), cut_on.clone());
        let a = answered.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&up) else {
                    continue;
                };
                let (s1, c1) = (s.clone(), c.clone());
                let (cr, sw) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(cr, sw, s1, Cut(Some(c1)), None));
                let (s2, a2) = (s.clone(), a.clone());
                std::thread::spawn(move || pump(server, client, s2, Cut(None), Some(a2)));
            }
        });
        Proxy {
            addr,
            stalled,
            cut_on,
            answered,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop forwarding in both directions; connections stay open, nothing answers.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// Stall (as `stall`) once `n` response bytes have been forwarded in all.
    pub fn stall_after_answering(&self, n: usize) {
        self.answered.stall_at.store(n, Ordering::SeqCst);
    }

    /// Response bytes forwarded so far.
    pub fn answered(&self) -> usize {
        self.answered.bytes.load(Ordering::SeqCst)
    }

    /// Close any connection whose request bytes contain `marker`, before forwarding them.
    pub fn cut_requests_containing(&self, marker: &str) {
        *self.cut_on.lock().unwrap() = Some(marker.as_bytes().to_vec());
    }
}

/// The marker that cuts a connection, for the request direction.
struct Cut(Option<Arc<Mutex<Option<Vec<u8>>>>>);

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    stalled: Arc<AtomicBool>,
    Cut(cut_on): Cut,
    answered: Option<Arc<Answered>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    // The tail of the previous chunk, so a marker split across reads is still seen.
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while stalled.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(cut) = &cut_on {
            if let Some(marker) = cut.lock().unwrap().clone() {
                let mut window = std::mem::take(&mut tail);
                window.extend_from_slice(&buf[..n]);
                if window.windows(marker.len()).any(|w| w == marker.as_slice()) {
                    break;
                }
                let keep = marker.len().min(window.len());
                tail = window[window.len() - keep..].to_vec();
            }
        }
        if let Some(a) = &answered {
            let room = a
                .stall_at
                .load(Ordering::SeqCst)
                .saturating_sub(a.bytes.load(Ordering::SeqCst));
            if room < n {
                // Forward up to the limit, then stall everything.
                let _ = to.write_all(&buf[..room]);
                a.bytes.fetch_add(room, Ordering::SeqCst);
                stalled.store(true, Ordering::SeqCst);
                while stalled.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                continue;
            }
            a.bytes.fetch_add(n, Ordering::SeqCst);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
