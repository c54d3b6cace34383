//! The `docker-daemon:NAME[:TAG]` sink: streams the archive straight into a Docker Engine's
//! `POST /images/load`, over `$DOCKER_HOST` (`unix://…` or plain `tcp://…`) or
//! `/var/run/docker.sock`. No docker CLI needed, nothing written to disk.

use super::{archive, WriteContext};
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layer::BUFFER_SIZE;
use crate::reference::Reference;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the Docker Engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DockerHost {
    Unix(PathBuf),
    Tcp(String),
}

impl DockerHost {
    /// `$DOCKER_HOST`, else the default socket.
    pub(crate) fn from_env() -> Result<DockerHost> {
        match std::env::var("DOCKER_HOST") {
            Ok(host) if !host.is_empty() => DockerHost::parse(&host),
            _ => Ok(DockerHost::Unix(PathBuf::from("/var/run/docker.sock"))),
        }
    }

    fn parse(host: &str) -> Result<DockerHost> {
        if let Some(path) = host.strip_prefix("unix://") {
            return Ok(DockerHost::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = host.strip_prefix("tcp://").or_else(|| host.strip_prefix("http://")) {
            return Ok(DockerHost::Tcp(addr.trim_end_matches('/').to_string()));
        }
        Err(Error::InvalidOption {
            option: "DOCKER_HOST",
            value: host.to_string(),
            reason: "expected unix:///path/to/docker.sock or tcp://host:port (TLS is not supported)".into(),
        })
    }

    fn connect(&self) -> io::Result<Box<dyn Stream>> {
        Ok(match self {
            #[cfg(unix)]
            DockerHost::Unix(path) => Box::new(UnixStream::connect(path)?),
            // Docker Desktop on Windows listens on a named pipe, which this sink does not speak.
            #[cfg(not(unix))]
            DockerHost::Unix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "unix sockets need a Unix system; set DOCKER_HOST=tcp://host:port",
                ))
            }
            DockerHost::Tcp(addr) => {
                let stream = TcpStream::connect(addr)?;
                stream.set_read_timeout(Some(Duration::from_secs(600)))?;
                Box::new(stream)
            }
        })
    }

    fn display(&self) -> String {
        match self {
            DockerHost::Unix(path) => format!("unix://{}", path.display()),
            DockerHost::Tcp(addr) => format!("tcp://{addr}"),
        }
    }
}

trait Stream: Read + Write + Send {
    fn try_clone_box(&self) -> io::Result<Box<dyn Stream>>;
}

#[cfg(unix)]
impl Stream for UnixStream {
    fn try_clone_box(&self) -> io::Result<Box<dyn Stream>> {
        Ok(Box::new(self.try_clone()?))
    }
}

impl Stream for TcpStream {
    fn try_clone_box(&self) -> io::Result<Box<dyn Stream>> {
        Ok(Box::new(self.try_clone()?))
    }
}

/// Fail early, before any build work, when the engine is not reachable.
pub(super) fn preflight() -> Result<()> {
    let host = DockerHost::from_env()?;
    host.connect().map(drop).map_err(|source| Error::DaemonUnavailable { host: host.display(), source })
}

pub(super) fn write(reference: &Reference, image: &Image, ctx: &WriteContext<'_>) -> Result<()> {
    let host = DockerHost::from_env()?;
    let unavailable = |source| Error::DaemonUnavailable { host: host.display(), source };
    let stream = host.connect().map_err(unavailable)?;
    let reader = stream.try_clone_box().map_err(unavailable)?;
    let dest = PathBuf::from(host.display());

    let mut tags = vec![reference.clone()];
    tags.extend(ctx.tags.iter().filter(|t| *t != reference).cloned());
    let ctx = WriteContext { tags: &tags, ..*ctx };

    let mut out = BufWriter::with_capacity(BUFFER_SIZE, stream);
    let head = "POST /images/load?quiet=1 HTTP/1.1\r\nHost: docker\r\nUser-Agent: zeroimage/".to_string()
        + crate::VERSION
        + "\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n";
    let sent = (|| -> Result<()> {
        out.write_all(head.as_bytes()).map_err(|e| Error::io("send the image to", &dest, e))?;
        let mut chunked = ChunkedWriter(&mut out);
        archive::write_to(&mut chunked, &dest, image, &ctx)?;
        out.write_all(b"0\r\n\r\n").and_then(|()| out.flush()).map_err(|e| Error::io("send the image to", &dest, e))
    })();
    // Cancelled: the engine waits for the rest of the upload and will not answer; closing the
    // connection aborts the load.
    if let Err(Error::Cancelled) = sent {
        return Err(Error::Cancelled);
    }
    // The engine may answer early (and close) when it rejects the upload: prefer its words.
    let response = read_response(reader, &dest);
    match (sent, response) {
        (_, Ok((status, body))) => check_load_response(&host.display(), status, &body),
        (Err(e), Err(_)) => Err(e),
        (Ok(()), Err(e)) => Err(e),
    }
}

/// The platform of the Docker engine at `$DOCKER_HOST` (`GET /version`: `Os`, `Arch`).
pub(super) fn platform() -> Result<crate::Platform> {
    let host = DockerHost::from_env()?;
    let unavailable = |source| Error::DaemonUnavailable { host: host.display(), source };
    let mut stream = host.connect().map_err(unavailable)?;
    let reader = stream.try_clone_box().map_err(unavailable)?;
    let dest = PathBuf::from(host.display());
    let request = format!(
        "GET /version HTTP/1.1\r\nHost: docker\r\nUser-Agent: zeroimage/{}\r\nConnection: close\r\n\r\n",
        crate::VERSION
    );
    stream.write_all(request.as_bytes()).map_err(|e| Error::io("ask the platform of", &dest, e))?;
    let (status, body) = read_response(reader, &dest)?;
    let version: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    match (status, version["Os"].as_str(), version["Arch"].as_str()) {
        (200, Some(os), Some(arch)) => crate::Platform::new(os, arch, None),
        _ => Err(Error::io(
            "ask the platform of",
            &dest,
            io::Error::new(io::ErrorKind::InvalidData, format!("GET /version answered {status}")),
        )),
    }
}

/// Docker answers 200 with a stream of JSON messages even when the load failed; an
/// `error` in any message is a failure.
fn check_load_response(host: &str, status: u16, body: &[u8]) -> Result<()> {
    let text = String::from_utf8_lossy(body);
    let rejected = |message: String| {
        Err(Error::DaemonRejected { host: host.to_string(), message: crate::redact::redact(&message, &[]) })
    };
    if status != 200 {
        let message = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("HTTP {status}: {}", text.trim()));
        return rejected(message);
    }
    let stream = serde_json::Deserializer::from_slice(body).into_iter::<serde_json::Value>();
    for message in stream.flatten() {
        if let Some(error) = message["error"].as_str().or_else(|| message["errorDetail"]["message"].as_str()) {
            return rejected(error.to_string());
        }
    }
    Ok(())
}

/// HTTP/1.1 chunked transfer encoding: one chunk per write.
struct ChunkedWriter<'a, W: Write>(&'a mut W);

impl<W: Write> Write for ChunkedWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        write!(self.0, "{:x}\r\n", buf.len())?;
        self.0.write_all(buf)?;
        self.0.write_all(b"\r\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Read an HTTP/1.1 response: status code and (de-chunked) body, up to 1 MiB of it.
fn read_response(stream: Box<dyn Stream>, dest: &Path) -> Result<(u16, Vec<u8>)> {
    let bad = |e: io::Error| Error::io("read the answer of", dest, e);
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).map_err(bad)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad(io::Error::new(io::ErrorKind::InvalidData, format!("not an HTTP answer: {line:?}"))))?;
    let mut chunked = false;
    let mut length: Option<u64> = None;
    loop {
        line.clear();
        reader.read_line(&mut line).map_err(bad)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if name == "content-length" {
                length = value.parse().ok();
            }
        }
    }
    const LIMIT: u64 = 1 << 20;
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line).map_err(bad)?;
            let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad(io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")))?;
            if size == 0 || body.len() as u64 + size > LIMIT {
                break;
            }
            (&mut reader).take(size).read_to_end(&mut body).map_err(bad)?;
            line.clear();
            reader.read_line(&mut line).map_err(bad)?;
        }
    } else {
        reader.take(length.unwrap_or(LIMIT).min(LIMIT)).read_to_end(&mut body).map_err(bad)?;
    }
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_host() {
        assert_eq!(DockerHost::parse("unix:///run/d.sock").unwrap(), DockerHost::Unix("/run/d.sock".into()));
        assert_eq!(DockerHost::parse("tcp://127.0.0.1:2375").unwrap(), DockerHost::Tcp("127.0.0.1:2375".into()));
        assert!(DockerHost::parse("ssh://me@host").is_err());
    }

    #[test]
    fn load_errors_in_a_200_stream_are_failures() {
        let ok = br#"{"stream":"Loaded image: prog:dev\n"}"#;
        assert!(check_load_response("h", 200, ok).is_ok());
        let bad = br#"{"stream":"x"}{"errorDetail":{"message":"wrong diff id"},"error":"wrong diff id"}"#;
        let err = check_load_response("h", 200, bad).unwrap_err();
        assert!(err.to_string().contains("wrong diff id"), "{err}");
        let err = check_load_response("h", 500, br#"{"message":"boom"}"#).unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
    }

    #[test]
    fn chunked_writer_frames_each_write() {
        let mut out = Vec::new();
        let mut w = ChunkedWriter(&mut out);
        w.write_all(b"hello").unwrap();
        w.write_all(b"").unwrap();
        w.write_all(&[b'x'; 17]).unwrap();
        assert_eq!(out, [&b"5\r\nhello\r\n11\r\n"[..], &[b'x'; 17], b"\r\n"].concat());
    }
}
