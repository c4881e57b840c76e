//! Routing rules of an application.
//!
//! Rules are ordered. The first *enabled* rule whose `pattern` matches the
//! **whole** destination, and whose `exclude` (if any) does not, wins. A
//! `conference` rule gives one scenario instance per distinct destination.
//!
//! ```
//! use switchboard_rules::{Rule, RuleSet};
//! let rules = RuleSet::new(vec![
//!     Rule::new("conference", "conf_.*", "conference").conference(true),
//!     Rule::new("gateway", ".*", "gateway"),
//! ]).unwrap();
//! assert_eq!(rules.route("conf_1234").unwrap().rule.name, "conference");
//! assert_eq!(rules.route("5551234").unwrap().rule.name, "gateway");
//! ```

mod explain;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

pub use explain::{Explanation, Step, StepOutcome};

/// Compiled patterns are capped so a hostile rule cannot eat memory.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// Longest pattern accepted.
pub const MAX_PATTERN_LEN: usize = 1024;

/// A routing rule as users write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    /// Regular expression that must match the whole destination.
    pub pattern: String,
    /// Optional regular expression; a destination it matches (whole) is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<String>,
    /// Name of the scenario to run.
    pub scenario: String,
    /// One scenario instance per distinct destination (a conference room).
    #[serde(default)]
    pub conference: bool,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_true() -> bool {
    true
}

impl Rule {
    /// An enabled, non-conference rule.
    pub fn new(name: &str, pattern: &str, scenario: &str) -> Rule {
        Rule {
            name: name.to_string(),
            pattern: pattern.to_string(),
            exclude: None,
            scenario: scenario.to_string(),
            conference: false,
            enabled: true,
        }
    }
    pub fn conference(mut self, conference: bool) -> Rule {
        self.conference = conference;
        self
    }
    pub fn exclude(mut self, exclude: &str) -> Rule {
        self.exclude = Some(exclude.to_string());
        self
    }
    pub fn enabled(mut self, enabled: bool) -> Rule {
        self.enabled = enabled;
        self
    }
}

/// Why a rule set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("rule #{index} has an empty name")]
    EmptyName { index: usize },
    #[error("rule name {name:?} is used more than once")]
    DuplicateName { name: String },
    #[error("rule {rule:?} names no scenario")]
    EmptyScenario { rule: String },
    #[error("rule {rule:?}: invalid {field}: {reason}")]
    InvalidPattern {
        rule: String,
        /// `pattern` or `exclude`.
        field: &'static str,
        reason: String,
    },
}

/// A validated rule with its compiled patterns.
#[derive(Debug, Clone)]
struct CompiledRule {
    rule: Rule,
    pattern: Regex,
    exclude: Option<Regex>,
}

/// The winning rule for a destination.
#[derive(Debug, Clone, Copy)]
pub struct Match<'a> {
    /// Position of the rule in the set.
    pub index: usize,
    pub rule: &'a Rule,
}

/// An application's validated, ordered rules. Cheap to share behind an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
}

impl RuleSet {
    /// Validates and compiles `rules` in order.
    pub fn new(rules: Vec<Rule>) -> Result<RuleSet, RuleError> {
        let mut compiled: Vec<CompiledRule> = Vec::with_capacity(rules.len());
        for (index, rule) in rules.into_iter().enumerate() {
            if rule.name.trim().is_empty() {
                return Err(RuleError::EmptyName { index });
            }
            if compiled.iter().any(|c| c.rule.name == rule.name) {
                return Err(RuleError::DuplicateName { name: rule.name });
            }
            if rule.scenario.trim().is_empty() {
                return Err(RuleError::EmptyScenario { rule: rule.name });
            }
            let pattern = compile_whole(&rule.name, "pattern", &rule.pattern)?;
            let exclude = match &rule.exclude {
                Some(ex) => Some(compile_whole(&rule.name, "exclude", ex)?),
                None => None,
            };
            compiled.push(CompiledRule {
                rule,
                pattern,
                exclude,
            });
        }
        Ok(RuleSet { rules: compiled })
    }

    /// The rules, in order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|c| &c.rule)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first enabled rule matching the whole `destination`.
    pub fn route(&self, destination: &str) -> Option<Match<'_>> {
        self.rules
            .iter()
            .enumerate()
            .find(|(_, c)| c.evaluate(destination) == StepOutcome::Matched)
            .map(|(index, c)| Match {
                index,
                rule: &c.rule,
            })
    }

    /// Which rule matches `destination` and why each earlier one did not.
    pub fn explain(&self, destination: &str) -> Explanation {
        let mut steps = Vec::new();
        for c in &self.rules {
            let outcome = c.evaluate(destination);
            let matched = outcome == StepOutcome::Matched;
            steps.push(Step {
                rule: c.rule.name.clone(),
                outcome,
            });
            if matched {
                break;
            }
        }
        Explanation::new(destination, steps)
    }
}

impl CompiledRule {
    fn evaluate(&self, destination: &str) -> StepOutcome {
        if !self.rule.enabled {
            StepOutcome::Disabled
        } else if !self.pattern.is_match(destination) {
            StepOutcome::PatternDidNotMatch
        } else if self
            .exclude
            .as_ref()
            .is_some_and(|ex| ex.is_match(destination))
        {
            StepOutcome::Excluded
        } else {
            StepOutcome::Matched
        }
    }
}

/// Compiles `source` so that it must match the whole input.
fn compile_whole(rule: &str, field: &'static str, source: &str) -> Result<Regex, RuleError> {
    let invalid = |reason: String| RuleError::InvalidPattern {
        rule: rule.to_string(),
        field,
        reason,
    };
    if source.is_empty() {
        return Err(invalid("must not be empty".into()));
    }
    if source.len() > MAX_PATTERN_LEN {
        return Err(invalid(format!("longer than {MAX_PATTERN_LEN} characters")));
    }
    // Compile the user's pattern alone first so error positions refer to
    // what they wrote, then anchor it.
    RegexBuilder::new(source)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| invalid(e.to_string()))?;
    RegexBuilder::new(&format!("^(?:{source})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests;
