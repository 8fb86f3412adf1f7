//! A TCP proxy for fault injection between drctl and a real object store: it forwards bytes
//! until told to stall (stop forwarding, keep every connection open: a store that hangs), or
//! cuts any connection whose request bytes contain a marker (a write that always fails).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Proxy {
    pub addr: String,
    stalled: Arc<AtomicBool>,
    cut_on: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Proxy {
    /// Listen on a loopback port, forwarding to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stalled = Arc::new(AtomicBool::new(false));
        let cut_on: Arc<Mutex<Option<Vec<u8>>>> = Arc::new(Mutex::new(None));
        let (up, s, c) = (upstream.to_string(), stalled.clone(), cut_on.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&up) else {
                    continue;
                };
                let (s1, c1) = (s.clone(), c.clone());
                let (cr, sw) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(cr, sw, s1, Some(c1)));
                let s2 = s.clone();
                std::thread::spawn(move || pump(server, client, s2, None));
            }
        });
        Proxy {
            addr,
            stalled,
            cut_on,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop forwarding in both directions; connections stay open, nothing answers.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// Close any connection whose request bytes contain `marker`, before forwarding them.
    pub fn cut_requests_containing(&self, marker: &str) {
        *self.cut_on.lock().unwrap() = Some(marker.as_bytes().to_vec());
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    stalled: Arc<AtomicBool>,
    cut_on: Option<Arc<Mutex<Option<Vec<u8>>>>>,
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
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
