//! What names, numbers and domains may look like. Names appear in URL
//! paths and file names (`<scenario>.js`), so they are kept plain.

use super::{ControlError, Result};
use crate::storage::AppRecord;

const MAX_NAME: usize = 64;
const MAX_ROUTES: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Account,
    Application,
    Scenario,
    Rule,
    Key,
}

impl NameKind {
    fn label(self) -> &'static str {
        match self {
            NameKind::Account => "account name",
            NameKind::Application => "application name",
            NameKind::Scenario => "scenario name",
            NameKind::Rule => "rule name",
            NameKind::Key => "key name",
        }
    }
}

/// 1-64 characters: letters, digits, `_`, `-`, `.`, starting with a letter
/// or digit. Application names may not start with `app_` (that is how ids
/// look, and an application is found by id or name). Key names are free
/// text (1-64 printable characters).
pub fn check_name(kind: NameKind, name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(ControlError::BadRequest(format!(
            "invalid {} {name:?}: {why}",
            kind.label()
        )))
    };
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return bad("must be 1 to 64 characters");
    }
    if kind == NameKind::Key {
        if name.chars().any(char::is_control) {
            return bad("control characters are not allowed");
        }
        return Ok(());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return bad("use letters, digits, '_', '-' and '.'");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("must start with a letter or a digit");
    }
    if kind == NameKind::Application && name.starts_with("app_") {
        return bad("'app_' starts application ids, not names");
    }
    Ok(())
}

/// Checks numbers and domains, lower-cases domains, sorts and dedups both.
pub(super) fn normalize_routes(record: &mut AppRecord) -> Result<()> {
    let bad = |what: &str, value: &str, why: &str| {
        Err(ControlError::BadRequest(format!(
            "invalid {what} {value:?}: {why}"
        )))
    };
    if record.numbers.len() > MAX_ROUTES || record.domains.len() > MAX_ROUTES {
        return Err(ControlError::BadRequest(format!(
            "at most {MAX_ROUTES} numbers and {MAX_ROUTES} domains per application"
        )));
    }
    for number in &record.numbers {
        if number.is_empty()
            || number.len() > MAX_NAME
            || number
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '@' | ':' | ';'))
        {
            return bad(
                "number",
                number,
                "1-64 characters without spaces, '@', ':' or ';'",
            );
        }
    }
    for domain in &mut record.domains {
        *domain = domain.to_ascii_lowercase();
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if domain.len() > 253 || !domain.split('.').all(valid_label) {
            return bad("domain", domain, "not a host name like sip.example.com");
        }
    }
    for host in &record.allowed_hosts {
        if host.is_empty() || host.len() > 253 || host.chars().any(|c| c.is_whitespace()) {
            return bad("allowed host", host, "not a host name");
        }
    }
    record.numbers.sort();
    record.numbers.dedup();
    record.domains.sort();
    record.domains.dedup();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name(NameKind::Scenario, "conference").is_ok());
        assert!(check_name(NameKind::Rule, "room-1.b_2").is_ok());
        assert!(check_name(NameKind::Scenario, "").is_err());
        assert!(check_name(NameKind::Scenario, "a/b").is_err());
        assert!(check_name(NameKind::Scenario, "-x").is_err());
        assert!(check_name(NameKind::Scenario, &"x".repeat(65)).is_err());
        assert!(check_name(NameKind::Application, "app_123").is_err());
        assert!(check_name(NameKind::Key, "CI key (prod)").is_ok());
        assert!(check_name(NameKind::Key, "a\nb").is_err());
    }

    #[test]
    fn routes_are_normalised() {
        let mut record = AppRecord {
            id: "app_x".into(),
            account: "a".into(),
            name: "x".into(),
            numbers: vec!["200".into(), "100".into(), "100".into()],
            domains: vec!["SIP.Example.com".into()],
            allowed_hosts: vec![],
            created_at: 0,
            updated_at: 0,
        };
        normalize_routes(&mut record).unwrap();
        assert_eq!(record.numbers, ["100", "200"]);
        assert_eq!(record.domains, ["sip.example.com"]);
        record.domains = vec!["bad domain".into()];
        assert!(normalize_routes(&mut record).is_err());
        record.domains = vec![];
        record.numbers = vec!["a@b".into()];
        assert!(normalize_routes(&mut record).is_err());
    }
}
