//! A synchronous client for one registry (OCI distribution spec): the `/v2/` ping and its auth
//! challenge, Basic auth and Bearer tokens cached per scope, manifests with the right `Accept`
//! header, blobs streamed, redirects followed without forwarding credentials to other hosts.

use super::auth::{Challenge, Credentials};
use super::interrupt::InterruptConnector;
use super::keychain::Keychain;
use super::tls::Tls;
use super::{Logger, RegistryOptions};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ureq::http::{self, Method, Request, Response};
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::Connector;
use ureq::Body;

/// Every manifest media type zeroimage reads, most preferred first.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest or config read into memory.
pub(crate) const MAX_JSON_SIZE: u64 = 8 << 20;

/// How long a request may make no progress, unless the options say otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How many redirects a request follows.
const MAX_REDIRECTS: usize = 10;

/// A client for one registry host. Cheap to share (`Arc`); `Send + Sync`.
pub struct Client {
    /// The registry as written in references (`docker.io`, `127.0.0.1:5000`).
    registry: String,
    /// The host requests go to (`registry-1.docker.io` for `docker.io`).
    host: String,
    agent: ureq::Agent,
    /// `--creds`, when given.
    credentials: Option<Credentials>,
    /// Where to look for credentials when none were given.
    keychain: Option<Keychain>,
    log: Option<Logger>,
    /// Plain HTTP to the registry: `--insecure`, or a loopback registry.
    allow_http: bool,
    /// Set: requests in flight give up (see [`super::interrupt`]).
    cancel: crate::cancel::CancelToken,
    /// `--insecure`: plain HTTP anywhere (a token server too), no certificate checks.
    insecure: bool,
    /// `--timeout`: also the most a request waits in all for a rate limit to pass.
    timeout: Duration,
    state: Mutex<State>,
    /// Trust and client certificate, also used to explain certificate failures.
    tls: Tls,
}

#[derive(Default)]
struct State {
    /// `https` or `http`, and the challenge `/v2/` answered with; set by the first request.
    endpoint: Option<(&'static str, Challenge)>,
    /// Bearer tokens by scope (`repository:team/app:pull`).
    tokens: HashMap<String, String>,
    /// Credentials found in the keychain (looked up once, on the first challenge).
    stored: Option<Option<Credentials>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("registry", &self.registry)
            .field("credentials", &self.credentials)
            .field("allow_http", &self.allow_http)
            .finish_non_exhaustive()
    }
}

/// What `POST …/blobs/uploads/` gave.
pub(crate) enum UploadStart {
    /// The blob was mounted from another repository: nothing to upload.
    Mounted,
    /// An upload session at this absolute URL.
    Session(String),
}

/// A response to a request.
pub(crate) struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Body,
}

impl Client {
    /// A client for `registry` (`host[:port]` as in references).
    pub fn new(registry: &str, options: &RegistryOptions) -> Result<Arc<Client>> {
        let tls = Tls::new(registry, options)?;
        let timeout = options.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(format!("zeroimage/{}", crate::VERSION))
            .timeout_connect(Some(timeout.min(Duration::from_secs(30))))
            .timeout_send_request(Some(timeout))
            .timeout_per_write(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .build();
        let host = if registry == crate::reference::DOCKER_HUB { "registry-1.docker.io" } else { registry };
        Ok(Arc::new(Client {
            registry: registry.to_string(),
            host: host.to_string(),
            agent: ureq::Agent::with_parts(
                config,
                tls.connector().chain(InterruptConnector { cancel: options.cancel.clone() }),
                DefaultResolver::default(),
            ),
            credentials: options.credentials.clone(),
            keychain: (options.credentials.is_none() && !options.skip_keychain).then(Keychain::from_env),
            log: options.log.clone(),
            allow_http: options.insecure || is_loopback(registry),
            cancel: options.cancel.clone(),
            insecure: options.insecure,
            timeout,
            state: Mutex::new(State::default()),
            tls,
        }))
    }

    /// The registry name as written in references.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// `GET /v2/<repository>/manifests/<reference>`: the bytes (at most [`MAX_JSON_SIZE`]), the
    /// media type the registry gave, and the `Docker-Content-Digest` header when present.
    pub(crate) fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<(Vec<u8>, Option<String>, Option<String>)> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let mut reply =
            self.send(Method::GET, &path, &pull_scope(repository), &[("accept", MANIFEST_ACCEPT)], &|| Vec::new())?;
        let media_type =
            header(&reply.headers, "content-type").map(|v| v.split(';').next().unwrap_or_default().trim().to_string());
        let digest = header(&reply.headers, "docker-content-digest");
        let url = self.display_url(&path);
        let bytes = read_limited(&mut reply.body, MAX_JSON_SIZE, &url)?;
        Ok((bytes, media_type, digest))
    }

    /// `GET /v2/<repository>/blobs/<digest>`, streamed. The caller verifies the digest.
    pub(crate) fn get_blob(&self, repository: &str, digest: &str) -> Result<Box<dyn Read + Send>> {
        let path = format!("/v2/{repository}/blobs/{digest}");
        let reply = self.send(Method::GET, &path, &pull_scope(repository), &[], &|| Vec::new())?;
        let url = self.display_url(&path);
        let reader = reply.body.into_reader();
        Ok(Box::new(IoContext { inner: reader, url }))
    }

    /// A blob read whole (configs): at most [`MAX_JSON_SIZE`] bytes.
    pub(crate) fn get_blob_bytes(&self, repository: &str, digest: &str) -> Result<Vec<u8>> {
        let path = format!("/v2/{repository}/blobs/{digest}");
        let mut reply = self.send(Method::GET, &path, &pull_scope(repository), &[], &|| Vec::new())?;
        read_limited(&mut reply.body, MAX_JSON_SIZE, &self.display_url(&path))
    }

    /// `GET /v2/` with the credentials through the registry's auth flow (for Bearer auth, a
    /// token asked for no scope, as `docker login` does): an auth error when refused.
    pub(crate) fn check_login(&self) -> Result<()> {
        let (scheme, challenge) = self.endpoint()?;
        let url = format!("{scheme}://{}/v2/", self.host);
        let authorization = match &challenge {
            Challenge::None => return Ok(()),
            Challenge::Basic => self.authorization(&challenge, "", false)?,
            Challenge::Bearer { realm, service, .. } => {
                Some(format!("Bearer {}", self.fetch_token(realm, service.as_deref(), "")?))
            }
        };
        let reply = self.send_following(Method::GET, &url, authorization.as_deref(), &[], &Vec::new)?;
        match reply.status {
            200..=299 => Ok(()),
            _ => Err(self.status_error(&Method::GET, &url, "", reply)),
        }
    }

    /// `HEAD /v2/<repository>/blobs/<digest>` (or `/manifests/`): whether it exists.
    pub(crate) fn exists(&self, repository: &str, kind: &str, digest: &str, accept: &str) -> Result<bool> {
        let url = format!("{}/v2/{repository}/{kind}/{digest}", self.base_url()?);
        let headers: &[(&str, &str)] = if accept.is_empty() { &[] } else { &[("accept", accept)] };
        let reply = self.send_url(Method::HEAD, &url, &push_scope(repository), headers, &Vec::new)?;
        match reply.status {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(self.status_error(&Method::HEAD, &url, &push_scope(repository), reply)),
        }
    }

    /// `POST /v2/<repository>/blobs/uploads/`, with `?mount=<digest>&from=<repository>` when
    /// `mount` is given: the blob mounted, or the upload session's absolute location.
    pub(crate) fn start_upload(&self, repository: &str, mount: Option<(&str, &str)>) -> Result<UploadStart> {
        let base = self.base_url()?;
        let (url, scope) = match mount {
            Some((digest, from)) => (
                format!("{base}/v2/{repository}/blobs/uploads/?mount={digest}&from={from}"),
                format!("{} {}", push_scope(repository), pull_scope(from)),
            ),
            None => (format!("{base}/v2/{repository}/blobs/uploads/"), push_scope(repository)),
        };
        let reply = self.send_url(Method::POST, &url, &scope, &[], &Vec::new)?;
        match reply.status {
            201 if mount.is_some() => Ok(UploadStart::Mounted),
            202 => Ok(UploadStart::Session(self.location(&reply, &url)?)),
            _ => Err(self.status_error(&Method::POST, &url, &scope, reply)),
        }
    }

    /// The absolute `Location` a reply to `url` names.
    pub(crate) fn location(&self, reply: &Reply, url: &str) -> Result<String> {
        let location = header(&reply.headers, "location").ok_or_else(|| Error::Registry {
            registry: self.registry.clone(),
            method: "POST",
            url: strip_query(url),
            status: reply.status,
            message: "the answer has no Location header".into(),
        })?;
        Ok(resolve_location(url, &location))
    }

    /// `PUT /v2/<repository>/manifests/<reference>` with the manifest's media type.
    pub(crate) fn put_manifest(&self, repository: &str, reference: &str, media_type: &str, bytes: &[u8]) -> Result<()> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        self.send(Method::PUT, &path, &push_scope(repository), &[("content-type", media_type)], &|| bytes.to_vec())?;
        Ok(())
    }

    /// `https://host/path` for messages (never with a query string).
    pub(crate) fn display_url(&self, path: &str) -> String {
        let scheme = self.state.lock().unwrap_or_else(|e| e.into_inner()).endpoint.as_ref().map_or("https", |e| e.0);
        format!("{scheme}://{}{path}", self.host)
    }

    /// `scheme://host` of the registry (after the ping).
    pub(crate) fn base_url(&self) -> Result<String> {
        let (scheme, _) = self.endpoint()?;
        Ok(format!("{scheme}://{}", self.host))
    }

    /// Say something at `--verbose`.
    pub(crate) fn log(&self, line: &str) {
        if let Some(log) = &self.log {
            log.log(line);
        }
    }

    /// Send a request to `path` (starting `/v2/`) with auth for `scope`, following redirects.
    ///
    /// `body` makes the request body; it is called again when the request is retried after a
    /// fresh token. A 2xx answer is returned; anything else is an error naming the registry's
    /// own message.
    pub(crate) fn send(
        &self,
        method: Method,
        path: &str,
        scope: &str,
        headers: &[(&str, &str)],
        body: &dyn Fn() -> Vec<u8>,
    ) -> Result<Reply> {
        let url = format!("{}{path}", self.base_url()?);
        let reply = self.send_url(method.clone(), &url, scope, headers, body)?;
        match reply.status {
            200..=299 => Ok(reply),
            _ => Err(self.status_error(&method, &url, scope, reply)),
        }
    }

    /// Send a request to an absolute `url` with auth for `scope` (credentials only when `url`
    /// is on the registry's own host), retrying once with a fresh token on 401. Any status
    /// is returned.
    pub(crate) fn send_url(
        &self,
        method: Method,
        url: &str,
        scope: &str,
        headers: &[(&str, &str)],
        body: &dyn Fn() -> Vec<u8>,
    ) -> Result<Reply> {
        let (_, challenge) = self.endpoint()?;
        let mut authorization = self.authorization(&challenge, scope, false)?;
        let mut retried = false;
        loop {
            let reply = self.send_following(method.clone(), url, authorization.as_deref(), headers, body)?;
            if reply.status == 401 && !retried && matches!(challenge, Challenge::Bearer { .. }) {
                // The token may have expired, or the registry wants another scope.
                retried = true;
                let wanted = header(&reply.headers, "www-authenticate")
                    .and_then(|h| Challenge::parse(&h))
                    .and_then(|c| match c {
                        Challenge::Bearer { scope: Some(s), .. } => Some(s),
                        _ => None,
                    })
                    .unwrap_or_else(|| scope.to_string());
                self.state.lock().unwrap_or_else(|e| e.into_inner()).tokens.remove(scope);
                authorization = self.authorization(&challenge, &wanted, true)?;
                continue;
            }
            return Ok(reply);
        }
    }

    /// Send one request with a streamed body of `length` bytes to `url` (an upload location),
    /// without redirects or auth retries: credentials go only to the registry's own host.
    /// Any status is returned.
    pub(crate) fn send_stream(
        &self,
        method: Method,
        url: &str,
        scope: &str,
        headers: &[(&str, &str)],
        body: &mut dyn Read,
        length: u64,
    ) -> Result<Reply> {
        let (_, challenge) = self.endpoint()?;
        let authorization = self.authorization(&challenge, scope, false)?;
        let mut request = Request::builder().method(method.clone()).uri(url);
        if let Some(auth) = authorization.filter(|_| self.same_origin(url)) {
            request = request.header("authorization", auth);
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request = request.header("content-length", length.to_string());
        let request = request.body(ureq::SendBody::from_reader(body)).map_err(|e| self.network_error(url, e))?;
        let response = self.agent.run(request).map_err(|e| self.network_error(url, e))?;
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        Ok(Reply { status, headers: parts.headers, body })
    }

    /// Whether `url` is on the registry's own scheme, host and port.
    fn same_origin(&self, url: &str) -> bool {
        let scheme = self.state.lock().unwrap_or_else(|e| e.into_inner()).endpoint.as_ref().map_or("https", |e| e.0);
        origin_of(url) == origin_of(&format!("{scheme}://{}/", self.host))
    }

    /// Send one request, following redirects; credentials go only to the registry's own host.
    fn send_following(
        &self,
        method: Method,
        url: &str,
        authorization: Option<&str>,
        headers: &[(&str, &str)],
        body: &dyn Fn() -> Vec<u8>,
    ) -> Result<Reply> {
        let mut url = url.to_string();
        let mut waited = Duration::ZERO;
        let mut redirects = 0;
        loop {
            if redirects > MAX_REDIRECTS {
                break;
            }
            let mut request = Request::builder().method(method.clone()).uri(&url);
            if let Some(auth) = authorization.filter(|_| self.same_origin(&url)) {
                request = request.header("authorization", auth);
            }
            for (k, v) in headers {
                request = request.header(*k, *v);
            }
            let bytes = body();
            let response: Response<Body> = if bytes.is_empty() && matches!(method, Method::GET | Method::HEAD) {
                let request = request.body(()).map_err(|e| self.network_error(&url, e))?;
                self.agent.run(request)
            } else {
                let request = request
                    .header("content-length", bytes.len().to_string())
                    .body(bytes)
                    .map_err(|e| self.network_error(&url, e))?;
                self.agent.run(request)
            }
            .map_err(|e| self.network_error(&url, e))?;
            let status = response.status().as_u16();
            if status == 429 {
                if let Some(wait) = self.rate_limit_wait(response.headers(), &method, &url, &mut waited)? {
                    std::thread::sleep(wait);
                    continue;
                }
            }
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                let location = header(response.headers(), "location").ok_or_else(|| Error::Registry {
                    registry: self.registry.clone(),
                    method: method_name(&method),
                    url: strip_query(&url),
                    status,
                    message: "a redirect without a Location header".into(),
                })?;
                let next = resolve_location(&url, &location);
                if next.starts_with("http://") && !url.starts_with("http://") {
                    return Err(Error::Registry {
                        registry: self.registry.clone(),
                        method: method_name(&method),
                        url: strip_query(&url),
                        status,
                        message: format!("refusing a redirect from https to plain http ({})", strip_query(&next)),
                    });
                }
                url = next;
                redirects += 1;
                continue;
            }
            let (parts, body) = response.into_parts();
            return Ok(Reply { status, headers: parts.headers, body });
        }
        Err(Error::Registry {
            registry: self.registry.clone(),
            method: method_name(&method),
            url: strip_query(&url),
            status: 310,
            message: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    fn endpoint(&self) -> Result<(&'static str, Challenge)> {
        if let Some(endpoint) = &self.state.lock().unwrap_or_else(|e| e.into_inner()).endpoint {
            return Ok(endpoint.clone());
        }
        let ping = |scheme: &'static str| -> Result<(&'static str, Challenge)> {
            let url = format!("{scheme}://{}/v2/", self.host);
            let mut waited = Duration::ZERO;
            let mut response = loop {
                let request = Request::builder()
                    .method(Method::GET)
                    .uri(&url)
                    .body(())
                    .map_err(|e| self.network_error(&url, e))?;
                let response = self.agent.run(request).map_err(|e| self.network_error(&url, e))?;
                if response.status().as_u16() == 429 {
                    if let Some(wait) = self.rate_limit_wait(response.headers(), &Method::GET, &url, &mut waited)? {
                        std::thread::sleep(wait);
                        continue;
                    }
                }
                break response;
            };
            let status = response.status().as_u16();
            match status {
                200..=299 => Ok((scheme, Challenge::None)),
                401 => {
                    let value = header(response.headers(), "www-authenticate").unwrap_or_default();
                    let challenge = Challenge::parse(&value).ok_or_else(|| Error::Registry {
                        registry: self.registry.clone(),
                        method: "GET",
                        url: url.clone(),
                        status,
                        message: format!("unsupported authentication challenge {:?}", self.redact(&value)),
                    })?;
                    Ok((scheme, challenge))
                }
                // Some registries answer 404 on /v2/ but serve the API; treat as anonymous.
                404 => Ok((scheme, Challenge::None)),
                _ => {
                    let message = self.redact(&error_message(response.body_mut()));
                    Err(Error::Registry { registry: self.registry.clone(), method: "GET", url, status, message })
                }
            }
        };
        // Plain HTTP only where allowed, and only when it works. A server that speaks TLS (an
        // untrusted certificate, say) keeps its TLS error; otherwise what happened over plain
        // HTTP is the error: a 500, a timeout, not the TLS attempt's "corrupt message".
        let endpoint = match ping("https") {
            Ok(endpoint) => endpoint,
            Err(tls_error @ Error::Network { .. }) if self.allow_http => match ping("http") {
                Ok(endpoint) => endpoint,
                Err(_) if speaks_tls(&tls_error) => return Err(tls_error),
                Err(http_error) => return Err(http_error),
            },
            Err(e) => return Err(e),
        };
        self.state.lock().unwrap_or_else(|e| e.into_inner()).endpoint = Some(endpoint.clone());
        Ok(endpoint)
    }

    /// The `Authorization` header for `scope` under `challenge`, fetching a token if needed.
    /// The credentials to use: `--creds`, else the keychain's (looked up once, and said at
    /// `--verbose` with where they came from, never the secret).
    pub(crate) fn credentials(&self) -> Result<Option<Credentials>> {
        if let Some(credentials) = &self.credentials {
            return Ok(Some(credentials.clone()));
        }
        if let Some(stored) = &self.state.lock().unwrap_or_else(|e| e.into_inner()).stored {
            return Ok(stored.clone());
        }
        let found = match &self.keychain {
            Some(keychain) => keychain.get(&self.registry)?,
            None => None,
        };
        let credentials = match found {
            Some((stored, source)) => {
                if stored.is_identity_token() {
                    self.log(&format!("credentials for {}: an identity token from {source}", self.registry));
                    Some(Credentials::IdentityToken(stored.secret))
                } else {
                    self.log(&format!("credentials for {}: user {} from {source}", self.registry, stored.username));
                    Some(Credentials::basic(stored.username, stored.secret))
                }
            }
            None => {
                if self.keychain.is_some() {
                    self.log(&format!("credentials for {}: none stored, anonymous", self.registry));
                }
                None
            }
        };
        self.state.lock().unwrap_or_else(|e| e.into_inner()).stored = Some(credentials.clone());
        Ok(credentials)
    }

    /// The `Authorization` header for `scope` under `challenge`, fetching a token if needed.
    fn authorization(&self, challenge: &Challenge, scope: &str, refresh: bool) -> Result<Option<String>> {
        match challenge {
            Challenge::None => Ok(None),
            Challenge::Basic => match self.credentials()? {
                Some(creds @ Credentials::Basic { .. }) => Ok(creds.basic_header()),
                Some(Credentials::Bearer(token)) => Ok(Some(format!("Bearer {token}"))),
                Some(_) | None => Err(Error::RegistryAuth {
                    registry: self.registry.clone(),
                    scope: Some(scope.to_string()),
                    message: "it asks for a user name and password".into(),
                    hint: Some(credentials_hint()),
                }),
            },
            Challenge::Bearer { realm, service, .. } => {
                if let Some(Credentials::Bearer(token)) = self.credentials()? {
                    return Ok(Some(format!("Bearer {token}")));
                }
                if !refresh {
                    if let Some(token) = self.state.lock().unwrap_or_else(|e| e.into_inner()).tokens.get(scope) {
                        return Ok(Some(format!("Bearer {token}")));
                    }
                }
                let token = self.fetch_token(realm, service.as_deref(), scope)?;
                self.state.lock().unwrap_or_else(|e| e.into_inner()).tokens.insert(scope.to_string(), token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// A token for `scope` (space-separated scopes become one `scope=` parameter each; empty
    /// asks for none, as `docker login` does): `GET realm?service=…&scope=…` with Basic
    /// credentials when there are some, or `POST realm` with `grant_type=refresh_token` for
    /// an identity token.
    pub(crate) fn fetch_token(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<String> {
        if !super::auth::realm_allowed(realm, self.insecure) {
            return Err(Error::RegistryAuth {
                registry: self.registry.clone(),
                scope: Some(scope.to_string()),
                message: format!(
                    "its token server {} is not https; credentials go over plain http only to loopback hosts",
                    strip_query(realm)
                ),
                hint: Some("pass --insecure to allow plain http to the token server".into()),
            });
        }
        let mut query = Vec::new();
        if let Some(service) = service {
            query.push(format!("service={}", url_encode(service)));
        }
        for scope in scope.split_whitespace() {
            query.push(format!("scope={}", url_encode(scope)));
        }
        let credentials = self.credentials()?;
        let response = if let Some(Credentials::IdentityToken(refresh)) = &credentials {
            query.push("grant_type=refresh_token".into());
            query.push("client_id=zeroimage".into());
            query.push(format!("refresh_token={}", url_encode(refresh)));
            let form = query.join("&");
            let request = Request::builder()
                .method(Method::POST)
                .uri(realm)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form)
                .map_err(|e| self.network_error(realm, e))?;
            self.agent.run(request)
        } else {
            let separator = if realm.contains('?') { '&' } else { '?' };
            let url =
                if query.is_empty() { realm.to_string() } else { format!("{realm}{separator}{}", query.join("&")) };
            let mut request = Request::builder().method(Method::GET).uri(&url);
            if let Some(basic) = credentials.as_ref().and_then(Credentials::basic_header) {
                request = request.header("authorization", basic);
            }
            let request = request.body(()).map_err(|e| self.network_error(realm, e))?;
            self.agent.run(request)
        };
        let mut response = response.map_err(|e| self.network_error(realm, e))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let message = self.redact(&error_message(response.body_mut()));
            return Err(match status {
                401 | 403 => Error::RegistryAuth {
                    registry: self.registry.clone(),
                    scope: (!scope.is_empty()).then(|| scope.to_string()),
                    message: format!("its token server {realm} answered {status}: {message}"),
                    hint: Some(credentials_hint()),
                },
                _ => Error::Registry {
                    registry: self.registry.clone(),
                    method: "GET",
                    url: realm.to_string(),
                    status,
                    message,
                },
            });
        }
        let bytes = read_limited(response.body_mut(), 1 << 20, realm)?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        value["token"]
            .as_str()
            .or_else(|| value["access_token"].as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .ok_or_else(|| Error::Registry {
                registry: self.registry.clone(),
                method: "GET",
                url: realm.to_string(),
                status,
                message: "the token server's answer has no token".into(),
            })
    }

    pub(crate) fn status_error(&self, method: &Method, url: &str, scope: &str, mut reply: Reply) -> Error {
        let message = self.redact(&error_message(&mut reply.body));
        match reply.status {
            401 | 403 => Error::RegistryAuth {
                registry: self.registry.clone(),
                scope: (!scope.is_empty()).then(|| scope.to_string()),
                message: format!("{} ({})", message, reply.status),
                hint: Some(credentials_hint()),
            },
            404 => Error::BaseNotFound {
                base: self.registry.clone(),
                what: describe_path(&strip_query(url)),
                hint: (!message.is_empty()).then(|| format!("the registry says: {message}")),
            },
            status => Error::Registry {
                registry: self.registry.clone(),
                method: method_name(method),
                url: strip_query(url),
                status,
                message,
            },
        }
    }

    /// After a 429 answer to `method url`: how long to wait before trying again, when the
    /// answer says (`Retry-After`) and the wait fits in what is left of the `--timeout` budget
    /// (`waited` so far, for this request). Said at `--verbose`. `None`: do not retry.
    fn rate_limit_wait(
        &self,
        headers: &http::HeaderMap,
        method: &Method,
        url: &str,
        waited: &mut Duration,
    ) -> Result<Option<Duration>> {
        let url = strip_query(url);
        let Some(wait) =
            header(headers, "retry-after").and_then(|v| parse_retry_after(&v, std::time::SystemTime::now()))
        else {
            self.log(&format!(
                "{} rate-limits {} {url} (429) without Retry-After; not retrying",
                self.registry,
                method_name(method)
            ));
            return Ok(None);
        };
        // At least a second each time, so a server answering `Retry-After: 0` forever still
        // runs out of budget.
        let wait = wait.max(Duration::from_secs(1));
        if *waited + wait > self.timeout {
            return Err(Error::Registry {
                registry: self.registry.clone(),
                method: method_name(method),
                url,
                status: 429,
                message: format!(
                    "too many requests: it asks to retry after {} s, beyond the {} s --timeout (waited {} s already)",
                    wait.as_secs(),
                    self.timeout.as_secs(),
                    waited.as_secs()
                ),
            });
        }
        self.log(&format!(
            "{} rate-limits {} {url} (429): waiting {} s as its Retry-After asks (--timeout {} s)",
            self.registry,
            method_name(method),
            wait.as_secs_f32().ceil(),
            self.timeout.as_secs()
        ));
        *waited += wait;
        Ok(Some(wait))
    }

    /// `text` from the registry or its token server, with credentials (any that look like
    /// one, and the secret in use) redacted: what may enter an error message.
    fn redact(&self, text: &str) -> String {
        let stored = self.state.lock().unwrap_or_else(|e| e.into_inner()).stored.clone().flatten();
        let secrets: Vec<&str> = [self.credentials.as_ref(), stored.as_ref()]
            .into_iter()
            .flatten()
            .map(|c| match c {
                Credentials::Basic { password, .. } => password.as_str(),
                Credentials::Bearer(token) | Credentials::IdentityToken(token) => token.as_str(),
            })
            .collect();
        crate::redact::redact(text, &secrets)
    }

    fn network_error(&self, url: &str, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        if self.cancel.is_cancelled() {
            return Error::Cancelled;
        }
        if let Some(error) = self.tls.explain(&strip_query(url), &source) {
            return error;
        }
        Error::Network { url: strip_query(url), source: Box::new(source) }
    }
}

/// Whether a failed TLS attempt reached a server that speaks TLS (it sent a certificate or
/// an alert), rather than one answering in plain HTTP or not at all.
fn speaks_tls(error: &Error) -> bool {
    let mut text = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(e) = source {
        text.push_str(&e.to_string().to_ascii_lowercase());
        text.push('\n');
        source = e.source();
    }
    (text.contains("certificate") || text.contains("alert")) && !text.contains("invalidcontenttype")
}

/// A `Retry-After` value (delta-seconds, or an HTTP date), as a wait from `now`.
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = parse_http_date(value)?;
    let now = now.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) as seconds since the epoch.
fn parse_http_date(value: &str) -> Option<u64> {
    let rest = value.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else { return None };
    let number = |s: &str, len: usize| {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u64>().ok()).flatten()
    };
    let day = number(day, 2)?;
    let year = number(year, 4)?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| m == month)? as u64
        + 1;
    let hms: Vec<&str> = time.split(':').collect();
    let [h, m, s] = hms.as_slice() else { return None };
    let (h, m, s) = (number(h, 2)?, number(m, 2)?, number(s, 2)?);
    if !(1..=31).contains(&day) || year < 1970 || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

/// `…/v2/team/app/manifests/1.0` → `manifest team/app:1.0`; blobs likewise.
fn describe_path(url: &str) -> String {
    let path = url.split_once("/v2/").map_or(url, |(_, p)| p);
    if let Some((repo, reference)) = path.rsplit_once("/manifests/") {
        let separator = if reference.contains(':') { '@' } else { ':' };
        format!("manifest {repo}{separator}{reference}")
    } else if let Some((repo, digest)) = path.rsplit_once("/blobs/") {
        format!("blob {digest} of {repo}")
    } else {
        path.to_string()
    }
}

fn credentials_hint() -> String {
    "log in with `zeroimage login REGISTRY` or pass --creds USER:PASSWORD, and check that the user may access this repository".into()
}

/// `repository:<name>:pull,push`
pub(crate) fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// `repository:<name>:pull`
pub(crate) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "request",
    }
}

pub(crate) fn header(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// The registry's own error text: `errors[].message` (with codes), else the body's start.
fn error_message(body: &mut Body) -> String {
    let mut bytes = Vec::new();
    let _ = body.as_reader().take(64 << 10).read_to_end(&mut bytes);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        if let Some(errors) = value["errors"].as_array() {
            let parts: Vec<String> = errors
                .iter()
                .map(|e| {
                    let code = e["code"].as_str().unwrap_or_default();
                    let message = e["message"].as_str().unwrap_or_default();
                    match (code.is_empty(), message.is_empty()) {
                        (false, false) => format!("{code}: {message}"),
                        (false, true) => code.to_string(),
                        _ => message.to_string(),
                    }
                })
                .filter(|s| !s.is_empty())
                .collect();
            if !parts.is_empty() {
                return parts.join("; ");
            }
        }
        if let Some(detail) = value["details"].as_str().or_else(|| value["error"].as_str()) {
            return detail.to_string();
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let text: String = text.trim().chars().take(200).collect();
    if text.is_empty() {
        "no message".into()
    } else {
        text
    }
}

fn read_limited(body: &mut Body, limit: u64, url: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    body.as_reader()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Network { url: strip_query(url), source: Box::new(e) })?;
    if bytes.len() as u64 > limit {
        return Err(Error::InvalidBase {
            base: strip_query(url),
            reason: format!("the document is larger than {limit} bytes"),
        });
    }
    Ok(bytes)
}

/// A reader whose I/O errors name the URL being read.
struct IoContext<R> {
    inner: R,
    url: String,
}

impl<R: Read> Read for IoContext<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).map_err(|e| match e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            true => e, // a cancelled read
            false => std::io::Error::new(e.kind(), format!("reading {}: {e}", self.url)),
        })
    }
}

/// `scheme://host:port` of a URL.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!("{}://{}", scheme.to_ascii_lowercase(), host.to_ascii_lowercase())
}

pub(crate) fn resolve_location(base: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else if location.starts_with("//") {
        format!("{}:{location}", base.split_once("://").map_or("https", |(s, _)| s))
    } else if location.starts_with('/') {
        format!("{}{location}", origin_of(base))
    } else {
        let cut = base.split(['?', '#']).next().unwrap_or(base);
        let dir = cut.rsplit_once('/').map_or(cut, |(d, _)| d);
        format!("{dir}/{location}")
    }
}

/// A URL without its query string or fragment (they may carry signatures).
pub(crate) fn strip_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_string()
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether `registry` (`host[:port]`) is a loopback address, where plain HTTP is allowed.
pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        registry.rsplit_once(':').map_or(registry, |(h, _)| h)
    };
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for yes in ["localhost", "localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000", "a.localhost"] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in ["registry.example.com", "10.0.0.1:5000", "[fe80::1]:80", "localhost.example.com"] {
            assert!(!is_loopback(no), "{no}");
        }
    }

    /// A one-thread HTTP server answering every connection with `answer(request head)`.
    fn serve(answer: impl Fn(&str) -> String + Send + 'static) -> (String, Arc<Mutex<Vec<String>>>) {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if line.trim().is_empty() => break,
                        Ok(_) => head.push_str(&line),
                    }
                }
                log.lock().unwrap().push(head.clone());
                let mut stream = stream;
                let _ = stream.write_all(answer(&head).as_bytes());
            }
        });
        (addr, seen)
    }

    #[test]
    fn redirects_to_other_hosts_get_no_credentials() {
        let (storage, storage_seen) =
            serve(|_| "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nblob".into());
        let location = format!("http://{storage}/bucket/blob?X-Signature=secret");
        let (registry, registry_seen) = serve(move |head| {
            let authorized = head.lines().any(|l| l.to_ascii_lowercase().starts_with("authorization: basic "));
            if head.starts_with("GET /v2/r/blobs/") && authorized {
                format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            } else if head.starts_with("GET /v2/") {
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
            } else {
                "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
            }
        });
        let options = RegistryOptions { credentials: Some(Credentials::basic("u", "pw")), ..Default::default() };
        let client = Client::new(&registry, &options).unwrap();
        let digest = format!("sha256:{}", "a".repeat(64));
        let mut body = String::new();
        client.get_blob("r", &digest).unwrap().read_to_string(&mut body).unwrap();
        assert_eq!(body, "blob");
        let registry_heads = registry_seen.lock().unwrap().clone();
        assert!(
            registry_heads
                .iter()
                .any(|h| h.starts_with("GET /v2/r/blobs/") && h.to_ascii_lowercase().contains("authorization: basic")),
            "{registry_heads:?}"
        );
        let storage_heads = storage_seen.lock().unwrap().clone();
        assert_eq!(storage_heads.len(), 1, "{storage_heads:?}");
        assert!(storage_heads[0].starts_with("GET /bucket/blob?X-Signature=secret"), "{storage_heads:?}");
        assert!(
            !storage_heads[0].to_ascii_lowercase().contains("authorization"),
            "credentials leaked: {storage_heads:?}"
        );

        // Without --insecure, a non-loopback registry never falls back to plain HTTP.
        let remote = Client::new("registry.invalid", &RegistryOptions::default()).unwrap();
        assert!(!remote.allow_http);
    }

    fn logged() -> (Logger, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        (Logger::new(move |line| sink.lock().unwrap().push(line.to_string())), lines)
    }

    #[test]
    fn rate_limits_are_waited_out_within_the_timeout() {
        let calls = Arc::new(Mutex::new(0));
        let counter = calls.clone();
        let (registry, _) = serve(move |head| {
            if !head.starts_with("GET /v2/r/manifests/") {
                return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into();
            }
            let mut n = counter.lock().unwrap();
            *n += 1;
            if *n == 1 {
                "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .into()
            } else if head.contains("/manifests/slow") {
                "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3600\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .into()
            } else {
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                    .into()
            }
        });
        let (log, lines) = logged();
        let options = RegistryOptions { timeout: Some(Duration::from_secs(5)), log: Some(log), ..Default::default() };
        let client = Client::new(&registry, &options).unwrap();
        let started = std::time::Instant::now();
        let (bytes, _, _) = client.get_manifest("r", "1").unwrap();
        assert_eq!(bytes, b"{}");
        assert!(started.elapsed() >= Duration::from_secs(1), "waited {:?}", started.elapsed());
        assert_eq!(*calls.lock().unwrap(), 2);
        let said = lines.lock().unwrap().join("\n");
        assert!(said.contains("429") && said.contains("waiting 1 s"), "{said}");

        let err = client.get_manifest("r", "slow").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Registry);
        assert!(err.to_string().contains("retry after 3600 s, beyond the 5 s --timeout"), "{err}");
    }

    #[test]
    fn retry_after_values() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO), "in the past");
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Tue, 29 Feb 2028 12:00:00 GMT"), Some(1_835_438_400));
        for bad in [
            "",
            "-1",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn a_plain_http_registry_reports_what_happened_over_http() {
        // A plain-HTTP server answering 500 to everything (the TLS attempt's hello included).
        let (registry, _) = serve(|_| {
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 11\r\nConnection: close\r\n\r\nit is broke".into()
        });
        let options = RegistryOptions { timeout: Some(Duration::from_secs(5)), ..Default::default() };
        let err = Client::new(&registry, &options).unwrap().get_manifest("r", "1").unwrap_err();
        let report = err.report();
        assert!(report.contains("500") && report.contains("it is broke"), "{report}");
        assert!(!report.contains("InvalidContentType") && !report.contains("https://"), "{report}");

        // A plain-HTTP server that never answers /v2/: the plain-HTTP timeout.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut held = Vec::new();
            for mut stream in listener.incoming().flatten() {
                let mut first = [0u8; 1];
                if std::io::Read::read(&mut stream, &mut first).is_ok() && first[0] == 0x16 {
                    // A TLS hello: answer in plain HTTP, as an HTTP server does.
                    let _ =
                        stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                } else {
                    held.push(stream);
                }
            }
        });
        let options = RegistryOptions { timeout: Some(Duration::from_secs(2)), ..Default::default() };
        let err = Client::new(&addr, &options).unwrap().get_manifest("r", "1").unwrap_err();
        let report = err.report();
        assert_eq!(err.kind(), crate::ErrorKind::Network, "{report}");
        assert!(report.contains(&format!("http://{addr}/v2/")), "{report}");
        assert!(report.to_ascii_lowercase().contains("timeout") || report.contains("timed out"), "{report}");
        assert!(!report.contains("InvalidContentType"), "{report}");
    }

    #[test]
    fn registry_error_bodies_never_carry_credentials() {
        let (registry, _) = serve(|head| {
            let authorization =
                head.lines().find(|l| l.to_ascii_lowercase().starts_with("authorization:")).unwrap_or("").to_string();
            if head.starts_with("GET /v2/ ") && authorization.is_empty() {
                return "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into();
            }
            let body = format!("{{\"errors\":[{{\"code\":\"DENIED\",\"message\":\"you sent {authorization} with password hunter2-pw\"}}]}}");
            format!("HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
        });
        let options =
            RegistryOptions { credentials: Some(Credentials::basic("me", "hunter2-pw")), ..Default::default() };
        let err = Client::new(&registry, &options).unwrap().get_manifest("r", "1").unwrap_err();
        let report = err.report();
        assert!(report.contains("DENIED") && report.contains("Basic <redacted>"), "{report}");
        assert!(!report.contains("hunter2") && !report.contains(&base64_basic("me", "hunter2-pw")), "{report}");
    }

    fn base64_basic(user: &str, password: &str) -> String {
        Credentials::basic(user, password).basic_header().unwrap().trim_start_matches("Basic ").to_string()
    }

    #[test]
    fn token_realms_follow_the_plain_http_rule() {
        use super::super::auth::realm_allowed;
        for (realm, insecure, allowed) in [
            ("https://auth.example.com/token", false, true),
            ("http://127.0.0.1:5001/token", false, true),
            ("http://localhost/token", false, true),
            ("http://auth.example.com/token", false, false),
            ("http://auth.example.com/token", true, true),
            ("HTTP://10.0.0.1:80/t", false, false),
            ("http://user@127.0.0.1.evil.com/t", false, false),
            ("ftp://127.0.0.1/t", true, false),
            ("/token", false, false),
        ] {
            assert_eq!(realm_allowed(realm, insecure), allowed, "{realm} insecure={insecure}");
        }
    }

    #[test]
    fn redirects_resolve_and_origins_compare() {
        assert_eq!(resolve_location("https://r.io/v2/a/blobs/x", "https://s3.io/b?sig=1"), "https://s3.io/b?sig=1");
        assert_eq!(resolve_location("https://r.io/v2/a/blobs/x", "/other"), "https://r.io/other");
        assert_eq!(resolve_location("https://r.io/v2/a/blobs/x?q", "y"), "https://r.io/v2/a/blobs/y");
        assert_eq!(resolve_location("http://r.io:5000/v2/x", "//cdn.io/z"), "http://cdn.io/z");
        assert_eq!(origin_of("https://R.io:443/x?y"), "https://r.io:443");
        assert_ne!(origin_of("https://r.io/x"), origin_of("https://cdn.r.io/x"));
        assert_eq!(strip_query("https://s3.io/b?X-Amz-Signature=secret"), "https://s3.io/b");
        assert_eq!(url_encode("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
    }
}
