//! Why a destination routes where it does.

use serde::Serialize;

/// What one rule made of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Disabled,
    PatternDidNotMatch,
    Excluded,
    Matched,
}

impl StepOutcome {
    /// A sentence for humans.
    pub fn describe(self) -> &'static str {
        match self {
            StepOutcome::Disabled => "rule is disabled",
            StepOutcome::PatternDidNotMatch => "pattern does not match the whole destination",
            StepOutcome::Excluded => "pattern matches but exclude matches too",
            StepOutcome::Matched => "pattern matches",
        }
    }
}

/// One rule's verdict, in rule order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub rule: String,
    pub outcome: StepOutcome,
}

/// The rules evaluated for a destination, up to and including the winner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub destination: String,
    /// The winning rule's name, if any.
    pub matched: Option<String>,
    pub steps: Vec<Step>,
}

impl Explanation {
    pub(crate) fn new(destination: &str, steps: Vec<Step>) -> Explanation {
        let matched = steps
            .last()
            .filter(|s| s.outcome == StepOutcome::Matched)
            .map(|s| s.rule.clone());
        Explanation {
            destination: destination.to_string(),
            matched,
            steps,
        }
    }
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for step in &self.steps {
            writeln!(f, "{}: {}", step.rule, step.outcome.describe())?;
        }
        match &self.matched {
            Some(rule) => write!(f, "{:?} routes to rule {rule}", self.destination),
            None => write!(f, "no rule matches {:?}", self.destination),
        }
    }
}
