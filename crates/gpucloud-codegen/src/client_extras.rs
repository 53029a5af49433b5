// Hand-written additions shared by every gpucloud raw client. `gpucloud-codegen` copies this
// file into OUT_DIR and the crate root `include!`s it; it expects `Client` (generated) and
// `DEFAULT_BASE_URL` (declared by the crate) in scope.

/// Why a client could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientBuildError {
    /// The base URL is not an absolute `http`/`https` URL.
    InvalidBaseUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The API key holds characters an HTTP header cannot carry (the key itself is not shown).
    InvalidApiKey,
    /// The HTTP stack could not be initialised (TLS backend, for example).
    Http(reqwest::Error),
    /// TLS could not be set up (no usable certificate store, for example).
    Tls(rustls::Error),
}

impl std::fmt::Display for ClientBuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidBaseUrl { url, reason } => write!(f, "invalid base URL {url:?}: {reason}"),
            Self::InvalidApiKey => f.write_str("the API key contains characters that cannot be sent in an HTTP header"),
            Self::Http(e) => write!(f, "cannot build the HTTP client: {e}"),
            Self::Tls(e) => write!(f, "cannot set up TLS: {e}"),
        }
    }
}

impl std::error::Error for ClientBuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Http(e) => Some(e),
            Self::Tls(e) => Some(e),
            _ => None,
        }
    }
}

/// Connection settings for [`Client::with_api_key_and_options`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Time allowed to establish a connection.
    pub connect_timeout: std::time::Duration,
    /// Time allowed for a whole request, response body included.
    pub timeout: std::time::Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self { connect_timeout: std::time::Duration::from_secs(10), timeout: std::time::Duration::from_secs(60) }
    }
}

/// The `User-Agent` every request carries: this crate's name and version.
pub const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

/// Checks that `url` is an absolute http(s) URL and returns it without a trailing slash
/// (generated paths start with `/`).
pub fn normalize_base_url(url: &str) -> Result<String, ClientBuildError> {
    let invalid = |reason: &str| ClientBuildError::InvalidBaseUrl { url: url.to_string(), reason: reason.to_string() };
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if parsed.host_str().is_none() {
        return Err(invalid("the URL has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("the URL must not carry a query or fragment"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// The TLS settings every client uses: rustls with the *ring* crypto provider and the operating
/// system's certificate verifier (`rustls-platform-verifier`, as reqwest's own default), TLS 1.2
/// and 1.3, HTTP/1.1 (ALPN `http/1.1`; the clients are built without HTTP/2).
///
/// Why not reqwest's default TLS: it is rustls with aws-lc, whose C build alone is the longest
/// step of a cold build (about 49 s of a 125 s consumer build measured on 2 cores), and ring
/// gives these clients everything they need. The configuration is handed to reqwest per client,
/// so no process-wide default provider is installed behind the application's back.
pub fn tls_config() -> Result<rustls::ClientConfig, ClientBuildError> {
    use rustls_platform_verifier::BuilderVerifierExt as _;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_platform_verifier())
        .map_err(ClientBuildError::Tls)?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A `reqwest::ClientBuilder` that sends `Authorization: Bearer <key>` (marked sensitive, so
/// reqwest redacts it in Debug output and drops it on redirects to another host), a
/// `User-Agent` naming this crate, and the given timeouts. Callers may add settings before
/// building.
pub fn authenticated_http_client(
    api_key: &secrecy::SecretString,
    options: &ClientOptions,
) -> Result<reqwest::ClientBuilder, ClientBuildError> {
    use secrecy::ExposeSecret as _;
    let mut auth = reqwest::header::HeaderValue::try_from(format!("Bearer {}", api_key.expose_secret()))
        .map_err(|_| ClientBuildError::InvalidApiKey)?;
    auth.set_sensitive(true);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, auth);
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config()?)
        .default_headers(headers)
        .user_agent(USER_AGENT)
        .connect_timeout(options.connect_timeout)
        .timeout(options.timeout))
}

impl Client {
    /// A client for `base_url` (default [`DEFAULT_BASE_URL`]) that authenticates with `api_key`
    /// and uses the default [`ClientOptions`].
    pub fn with_api_key(api_key: &secrecy::SecretString, base_url: Option<&str>) -> Result<Self, ClientBuildError> {
        Self::with_api_key_and_options(api_key, base_url, &ClientOptions::default())
    }

    /// Like [`Client::with_api_key`], with explicit connection settings.
    pub fn with_api_key_and_options(
        api_key: &secrecy::SecretString,
        base_url: Option<&str>,
        options: &ClientOptions,
    ) -> Result<Self, ClientBuildError> {
        let base_url = normalize_base_url(base_url.unwrap_or(DEFAULT_BASE_URL))?;
        let http = authenticated_http_client(api_key, options)?.build().map_err(ClientBuildError::Http)?;
        Ok(Self::new_with_client(&base_url, http))
    }
}

/// progenitor adds an `api-version` header taken from the document's `info.version`. Neither
/// provider defines it and it would only confuse a proxy or the server, so it is removed
/// before each request goes out.
impl progenitor_client::ClientHooks<()> for Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        _info: &progenitor_client::OperationInfo,
    ) -> std::result::Result<(), progenitor_client::Error<E>> {
        request.headers_mut().remove("api-version");
        Ok(())
    }
}
