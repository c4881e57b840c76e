//! The two pieces of a SIP URI the engine needs, without a full parse.

/// The host of `sip:user@host:port;params` (`[v6]` without brackets).
pub(crate) fn host(uri: &str) -> &str {
    let rest = uri.split_once(':').map(|(_, rest)| rest).unwrap_or(uri);
    let rest = rest.rsplit_once('@').map(|(_, host)| host).unwrap_or(rest);
    let end = rest.find([';', '?', '>']).unwrap_or(rest.len());
    let host_port = &rest[..end];
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    host_port.split(':').next().unwrap_or(host_port)
}

/// The user of `sip:user@host`, if there is one.
pub(crate) fn user(uri: &str) -> Option<&str> {
    let rest = uri.split_once(':')?.1;
    let (user, _) = rest.split_once('@')?;
    Some(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_users() {
        assert_eq!(host("sip:conf_1@example.com"), "example.com");
        assert_eq!(host("sip:1@10.0.0.1:5060;transport=tcp"), "10.0.0.1");
        assert_eq!(host("sips:a@[::1]:5061"), "::1");
        assert_eq!(host("sip:example.org"), "example.org");
        assert_eq!(host("sip:a%40b@host?x=y"), "host");
        assert_eq!(user("sip:sales@127.0.0.1:5070"), Some("sales"));
        assert_eq!(user("sip:127.0.0.1"), None);
    }
}
