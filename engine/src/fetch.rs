//! `fetch()` for scenarios: outbound HTTP only to the hosts the application
//! allows, with timeouts and size caps, and no redirects (a redirect could
//! lead anywhere).

use std::time::Duration;

use switchboard_scenarios::{FetchError, FetchRequest, FetchResponse};

use crate::app::Application;

/// Largest response body handed to a scenario.
pub const MAX_RESPONSE_BYTES: usize = 5 * 1024 * 1024;
/// Largest request body a scenario may send.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Longest any request may take, whatever the scenario asks.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP client scenarios share.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

pub async fn fetch(
    http: &reqwest::Client,
    app: &Application,
    request: FetchRequest,
) -> Result<FetchResponse, FetchError> {
    let url = reqwest::Url::parse(&request.url)
        .map_err(|e| FetchError::Invalid(format!("{}: {e}", request.url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::Invalid(format!(
            "{}: only http and https",
            request.url
        )));
    }
    let host = url.host_str().unwrap_or_default().to_string();
    if !app.allows_host(&host) {
        return Err(FetchError::NotAllowed(host));
    }
    let method = reqwest::Method::from_bytes(request.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| FetchError::Invalid(format!("method {:?}", request.method)))?;
    if request
        .body
        .as_ref()
        .is_some_and(|b| b.len() > MAX_REQUEST_BYTES)
    {
        return Err(FetchError::Invalid(format!(
            "request body larger than {MAX_REQUEST_BYTES} bytes"
        )));
    }
    let timeout = request.timeout.clamp(Duration::from_millis(1), MAX_TIMEOUT);
    let mut builder = http.request(method, url).timeout(timeout);
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    if let Some(body) = request.body {
        builder = builder.body(body);
    }
    let network = |e: reqwest::Error| {
        if e.is_timeout() {
            FetchError::Timeout
        } else {
            FetchError::Network(e.to_string())
        }
    };
    let mut response = builder.send().await.map_err(network)?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(network)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(FetchError::TooLarge(MAX_RESPONSE_BYTES));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(FetchResponse {
        status,
        headers,
        body,
    })
}
