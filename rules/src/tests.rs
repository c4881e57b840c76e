use super::*;

fn anyroom() -> RuleSet {
    RuleSet::new(vec![
        Rule::new("conference", "conf_.*", "conference").conference(true),
        Rule::new("gateway", ".*", "gateway"),
    ])
    .unwrap()
}

#[test]
fn first_matching_rule_wins() {
    let rules = anyroom();
    let m = rules.route("conf_1234").unwrap();
    assert_eq!((m.index, m.rule.name.as_str()), (0, "conference"));
    assert!(m.rule.conference);
    assert_eq!(rules.route("1234").unwrap().rule.name, "gateway");
    assert_eq!(rules.route("").unwrap().rule.name, "gateway");
}

#[test]
fn pattern_must_match_whole_destination() {
    let rules = RuleSet::new(vec![Rule::new("digits", "[0-9]+", "s")]).unwrap();
    assert!(rules.route("1234").is_some());
    assert!(rules.route("x1234").is_none());
    assert!(rules.route("1234x").is_none());
    // Alternation must not escape the anchors.
    let rules = RuleSet::new(vec![Rule::new("alt", "a|b", "s")]).unwrap();
    assert!(rules.route("a").is_some());
    assert!(rules.route("ab").is_none());
    assert!(rules.route("xb").is_none());
}

#[test]
fn disabled_and_excluded_rules_are_skipped() {
    let rules = RuleSet::new(vec![
        Rule::new("off", ".*", "a").enabled(false),
        Rule::new("not-911", "[0-9]+", "b").exclude("911"),
        Rule::new("rest", ".*", "c"),
    ])
    .unwrap();
    assert_eq!(rules.route("5551234").unwrap().rule.name, "not-911");
    assert_eq!(rules.route("911").unwrap().rule.name, "rest");
    // exclude is anchored too: "9110" is not excluded.
    assert_eq!(rules.route("9110").unwrap().rule.name, "not-911");
}

#[test]
fn no_match_is_none() {
    let rules = RuleSet::new(vec![Rule::new("conf", "conf_[0-9]+", "c")]).unwrap();
    assert!(rules.route("conf_abc").is_none());
    assert!(RuleSet::default().route("x").is_none());
}

#[test]
fn explain_says_why_each_earlier_rule_did_not_match() {
    let rules = RuleSet::new(vec![
        Rule::new("off", ".*", "a").enabled(false),
        Rule::new("conf", "conf_.*", "b").exclude("conf_0+"),
        Rule::new("digits", "[0-9]+", "c"),
        Rule::new("never-reached", ".*", "d"),
    ])
    .unwrap();
    let e = rules.explain("conf_000");
    assert_eq!(e.matched.as_deref(), Some("never-reached"));
    assert_eq!(
        e.steps.iter().map(|s| s.outcome).collect::<Vec<_>>(),
        vec![
            StepOutcome::Disabled,
            StepOutcome::Excluded,
            StepOutcome::PatternDidNotMatch,
            StepOutcome::Matched,
        ]
    );
    let e = rules.explain("42");
    assert_eq!(e.matched.as_deref(), Some("digits"));
    assert_eq!(e.steps.len(), 3, "stops at the winner");
    let text = e.to_string();
    assert!(text.contains("off: rule is disabled"), "{text}");
    assert!(text.contains("routes to rule digits"), "{text}");
}

#[test]
fn invalid_rules_are_refused_with_reasons() {
    let err = RuleSet::new(vec![Rule::new("bad", "conf_(", "c")]).unwrap_err();
    match err {
        RuleError::InvalidPattern {
            rule,
            field,
            reason,
        } => {
            assert_eq!((rule.as_str(), field), ("bad", "pattern"));
            assert!(reason.contains("unclosed group"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let err = RuleSet::new(vec![Rule::new("x", ".*", "c").exclude("[")]).unwrap_err();
    assert!(matches!(
        err,
        RuleError::InvalidPattern {
            field: "exclude",
            ..
        }
    ));
    let err = RuleSet::new(vec![Rule::new("a", ".*", "c"), Rule::new("a", "x", "d")]).unwrap_err();
    assert_eq!(err, RuleError::DuplicateName { name: "a".into() });
    assert!(matches!(
        RuleSet::new(vec![Rule::new(" ", ".*", "c")]).unwrap_err(),
        RuleError::EmptyName { index: 0 }
    ));
    assert!(matches!(
        RuleSet::new(vec![Rule::new("a", ".*", "")]).unwrap_err(),
        RuleError::EmptyScenario { .. }
    ));
    assert!(matches!(
        RuleSet::new(vec![Rule::new("a", "", "s")]).unwrap_err(),
        RuleError::InvalidPattern { .. }
    ));
    let huge = "a".repeat(MAX_PATTERN_LEN + 1);
    assert!(RuleSet::new(vec![Rule::new("a", &huge, "s")]).is_err());
    // A pattern that compiles to something enormous is refused, not built.
    assert!(RuleSet::new(vec![Rule::new("a", "(?:a{1000}){1000}", "s")]).is_err());
}

#[test]
fn rules_deserialize_with_defaults() {
    let rule: Rule =
        serde_json::from_str(r#"{"name":"g","pattern":".*","scenario":"gateway"}"#).unwrap();
    assert!(rule.enabled);
    assert!(!rule.conference);
    assert_eq!(rule.exclude, None);
}
