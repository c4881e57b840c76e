//! A small client of the management API for the CLI.

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Where the API is unless told otherwise.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {url}: {source}")]
    Connect { url: String, source: reqwest::Error },
    /// The API answered with an error.
    #[error("{}", describe(*status, code, message, details))]
    Api {
        status: StatusCode,
        code: String,
        message: String,
        details: Option<Value>,
    },
    #[error("unexpected answer from the API: {0}")]
    Unexpected(String),
    #[error("{0}")]
    Usage(String),
}

fn describe(status: StatusCode, code: &str, message: &str, details: &Option<Value>) -> String {
    let mut text = format!("{message} ({} {code})", status.as_u16());
    if code == "compile_error" {
        if let Some(d) = details {
            if let (Some(line), Some(column)) = (d.get("line"), d.get("column")) {
                text.push_str(&format!(" at line {line}, column {column}"));
            }
        }
    }
    text
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    /// `url` is the server's base URL (`http://host:8080`); `key` an API key.
    pub fn new(url: &str, key: &str) -> Result<Client, ClientError> {
        if key.is_empty() {
            return Err(ClientError::Usage(
                "no API key: pass --key or set SWITCHBOARD_KEY".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("switchboard-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Usage(format!("cannot make an HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: url.trim_end_matches('/').to_string(),
            key: key.to_string(),
        })
    }

    /// Sends a request to `/api/v1{path}` and decodes the JSON answer.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<T, ClientError> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(&self.key)
            .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|source| ClientError::Connect {
                url: self.base.clone(),
                source,
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        if !status.is_success() {
            let error: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let error = &error["error"];
            return Err(ClientError::Api {
                status,
                code: error["code"].as_str().unwrap_or("unknown").to_string(),
                message: error["message"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned()),
                details: error.get("details").cloned(),
            });
        }
        let bytes = if bytes.is_empty() {
            &b"null"[..]
        } else {
            &bytes[..]
        };
        serde_json::from_slice(bytes).map_err(|e| ClientError::Unexpected(e.to_string()))
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ClientError> {
        self.call(Method::GET, path, query, None).await
    }
}

/// A path segment, percent-encoded.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'+') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("conf_1"), "conf_1");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
        assert_eq!(segment("+1555"), "+1555");
    }

    #[test]
    fn compile_errors_say_where() {
        let text = describe(
            StatusCode::BAD_REQUEST,
            "compile_error",
            "scenario x does not compile",
            &Some(serde_json::json!({"line": 3, "column": 7})),
        );
        assert_eq!(
            text,
            "scenario x does not compile (400 compile_error) at line 3, column 7"
        );
    }
}
