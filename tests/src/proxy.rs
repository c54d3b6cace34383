//! A fault-injecting HTTP proxy between a client and a plain-HTTP registry on loopback.
//!
//! Each connection carries one request (responses say `Connection: close`). For every
//! request a rule decides: pass it through, answer with a status, drop the connection after
//! part of the body, or stall without answering. The `Host` header is passed unchanged, so
//! the registry's `Location` headers point back at the proxy.
//!
//! ```no_run
//! use zeroimage_tests::proxy::{Fault, FaultProxy};
//! let proxy = FaultProxy::start("127.0.0.1:5000", |req| if req.method == "PATCH" { Fault::Status(500) } else { Fault::Pass });
//! println!("{} {:?}", proxy.addr(), proxy.seen());
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward it to the registry and the answer back.
    Pass,
    /// Answer with this status (after reading the body), without asking the registry.
    Status(u16),
    /// Forward the head and this many body bytes, then drop both connections.
    DropAfter(u64),
    /// Read nothing more and never answer (until the proxy stops or 120 s pass).
    Stall,
    /// Answer with this status and these extra header lines (each ending `\r\n`), without
    /// asking the registry.
    Answer(u16, &'static str),
    /// Answer with this status and a registry error body quoting the request's
    /// `Authorization` header (as a careless registry or gateway might).
    EchoAuthorization(u16),
}

/// The head of a request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    /// `GET`, `PATCH`, …
    pub method: String,
    /// The request target, query included.
    pub target: String,
    /// `Content-Length`, 0 when absent.
    pub content_length: u64,
    /// The `Authorization` header, when sent.
    pub authorization: Option<String>,
}

type Rule = dyn FnMut(&ProxyRequest) -> Fault + Send;

/// The proxy: a listener thread on `127.0.0.1:<free port>`; stopped on drop.
pub struct FaultProxy {
    addr: String,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(ProxyRequest, Fault)>>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Start a proxy to `upstream` (`127.0.0.1:PORT`) applying `rule` to each request.
    pub fn start(upstream: &str, rule: impl FnMut(&ProxyRequest) -> Fault + Send + 'static) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot bind the proxy");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rule: Arc<Mutex<Box<Rule>>> = Arc::new(Mutex::new(Box::new(rule)));
        {
            let (stop, seen, upstream) = (stop.clone(), seen.clone(), upstream.to_string());
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (stop, seen, rule, upstream) = (stop.clone(), seen.clone(), rule.clone(), upstream.clone());
                    thread::spawn(move || {
                        let _ = handle(stream, &upstream, &rule, &seen, &stop);
                    });
                }
            });
        }
        FaultProxy { addr, stop, seen }
    }

    /// `127.0.0.1:PORT` to use as the registry.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Every request seen so far, with what was done to it.
    pub fn seen(&self) -> Vec<(ProxyRequest, Fault)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr); // wake the accept loop
    }
}

fn handle(
    client: TcpStream,
    upstream: &str,
    rule: &Mutex<Box<Rule>>,
    seen: &Mutex<Vec<(ProxyRequest, Fault)>>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        lines.push(line.trim_end().to_string());
    }
    let Some(first) = lines.first() else { return Ok(()) };
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let content_length = lines
        .iter()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0u64);
    let authorization = lines
        .iter()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_string());
    let request = ProxyRequest { method, target, content_length, authorization };
    let fault = (rule.lock().unwrap())(&request);
    let authorization = request.authorization.clone().unwrap_or_default();
    seen.lock().unwrap().push((request, fault));
    let mut client_out = client;
    match fault {
        Fault::Status(code) => {
            std::io::copy(&mut (&mut reader).take(content_length), &mut std::io::sink())?;
            write!(client_out, "HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
            client_out.flush()?;
            let _ = client_out.shutdown(Shutdown::Both);
        }
        Fault::Answer(code, headers) => {
            std::io::copy(&mut (&mut reader).take(content_length), &mut std::io::sink())?;
            write!(client_out, "HTTP/1.1 {code} Injected\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n")?;
            client_out.flush()?;
            let _ = client_out.shutdown(Shutdown::Both);
        }
        Fault::EchoAuthorization(code) => {
            std::io::copy(&mut (&mut reader).take(content_length), &mut std::io::sink())?;
            let body = serde_json::json!({"errors": [{
                "code": "DENIED",
                "message": format!("request had Authorization: {authorization}"),
            }]})
            .to_string();
            write!(
                client_out,
                "HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
            client_out.flush()?;
            let _ = client_out.shutdown(Shutdown::Both);
        }
        Fault::Stall => {
            let start = Instant::now();
            while !stop.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(120) {
                thread::sleep(Duration::from_millis(100));
            }
            let _ = client_out.shutdown(Shutdown::Both);
        }
        Fault::Pass | Fault::DropAfter(_) => {
            let mut up = TcpStream::connect(upstream)?;
            let mut head = String::new();
            for line in &lines {
                if line.to_ascii_lowercase().starts_with("connection:") {
                    continue;
                }
                head.push_str(line);
                head.push_str("\r\n");
            }
            head.push_str("Connection: close\r\n\r\n");
            up.write_all(head.as_bytes())?;
            if let Fault::DropAfter(n) = fault {
                std::io::copy(&mut (&mut reader).take(n.min(content_length)), &mut up)?;
                up.flush()?;
                thread::sleep(Duration::from_millis(200));
                let _ = up.shutdown(Shutdown::Both);
                let _ = client_out.shutdown(Shutdown::Both);
                return Ok(());
            }
            std::io::copy(&mut (&mut reader).take(content_length), &mut up)?;
            up.flush()?;
            // The answer: its head with Connection: close, then everything until EOF.
            let mut up_reader = BufReader::new(up);
            let mut response = String::new();
            loop {
                let mut line = String::new();
                if up_reader.read_line(&mut line)? == 0 {
                    break;
                }
                if line == "\r\n" || line == "\n" {
                    break;
                }
                if !line.to_ascii_lowercase().starts_with("connection:") {
                    response.push_str(&line);
                }
            }
            response.push_str("Connection: close\r\n\r\n");
            client_out.write_all(response.as_bytes())?;
            std::io::copy(&mut up_reader, &mut client_out)?;
            client_out.flush()?;
            let _ = client_out.shutdown(Shutdown::Both);
        }
    }
    Ok(())
}
