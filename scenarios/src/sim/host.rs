//! A simulated engine: records logs and routes, and can route calls into new
//! instances by simple rules (per destination for conference rules), the way
//! the engine does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::call::SimCall;
use super::conference::SimConference;
use super::timeline::SimEvent;
use crate::host::{CallControl, ConferenceControl, LogLevel, RouteError, ScenarioHost};
use crate::{CallContext, InstanceContext, Limits, Scenario, ScenarioError, ScenarioInstance};

/// A routing rule of the simulated application.
#[derive(Clone)]
pub struct SimRule {
    pub name: String,
    /// The whole destination must match; `*` matches any run of characters.
    pub pattern: String,
    pub scenario: Scenario,
    /// One instance (owning a conference) per distinct destination.
    pub conference: bool,
}

/// A log line the scenario wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct SimLog {
    pub at: Duration,
    pub call_id: Option<String>,
    pub level: LogLevel,
    pub message: String,
}

/// A `routeTo` the host was asked to perform.
#[derive(Debug, Clone, PartialEq)]
pub struct SimRoute {
    pub call_id: String,
    pub destination: String,
    pub custom_data: serde_json::Value,
}

struct Inner {
    rules: Vec<SimRule>,
    logs: Vec<SimLog>,
    routes: Vec<SimRoute>,
    calls: HashMap<String, Weak<SimCall>>,
    instances: Vec<ScenarioInstance>,
    conferences: HashMap<String, (ScenarioInstance, Arc<SimConference>)>,
}

/// An in-memory [`ScenarioHost`].
pub struct SimHost {
    me: Weak<SimHost>,
    start: Instant,
    app: String,
    limits: Limits,
    inner: Mutex<Inner>,
    /// Serialises starting conference instances (one per destination).
    conference_starts: tokio::sync::Mutex<()>,
}

impl SimHost {
    /// A host for application `sim` with default limits.
    pub fn new() -> Arc<SimHost> {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Arc<SimHost> {
        Arc::new_cyclic(|me| SimHost {
            me: me.clone(),
            start: Instant::now(),
            app: "sim".to_string(),
            limits,
            inner: Mutex::new(Inner {
                rules: Vec::new(),
                logs: Vec::new(),
                routes: Vec::new(),
                calls: HashMap::new(),
                instances: Vec::new(),
                conferences: HashMap::new(),
            }),
            conference_starts: tokio::sync::Mutex::new(()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn this(&self) -> Result<Arc<SimHost>, RouteError> {
        self.me
            .upgrade()
            .ok_or_else(|| RouteError::Other("the sim host is gone".into()))
    }

    /// Adds a rule; `route_to` then starts instances. Without rules, routes
    /// are only recorded.
    pub fn add_rule(&self, name: &str, pattern: &str, scenario: &Scenario, conference: bool) {
        self.lock().rules.push(SimRule {
            name: name.to_string(),
            pattern: pattern.to_string(),
            scenario: scenario.clone(),
            conference,
        });
    }

    /// Lets routes and log lines about `call` show in its timeline.
    pub fn register(&self, call: &Arc<SimCall>) {
        use crate::host::CallControl as _;
        self.lock()
            .calls
            .insert(call.info().id.clone(), Arc::downgrade(call));
    }

    pub fn logs(&self) -> Vec<SimLog> {
        self.lock().logs.clone()
    }

    /// Log lines containing `text`.
    pub fn logs_containing(&self, text: &str) -> Vec<SimLog> {
        self.lock()
            .logs
            .iter()
            .filter(|l| l.message.contains(text))
            .cloned()
            .collect()
    }

    pub fn routes(&self) -> Vec<SimRoute> {
        self.lock().routes.clone()
    }

    /// Every instance this host started.
    pub fn instances(&self) -> Vec<ScenarioInstance> {
        self.lock().instances.clone()
    }

    /// The conference behind a conference destination, once started.
    pub fn conference(&self, destination: &str) -> Option<Arc<SimConference>> {
        self.lock()
            .conferences
            .get(destination)
            .map(|(_, c)| c.clone())
    }

    /// Runs `scenario` for `call` in a new (per-call) instance, the way the
    /// engine handles an incoming call. The call is registered.
    pub async fn start_call(
        &self,
        scenario: &Scenario,
        call: Arc<SimCall>,
    ) -> Result<ScenarioInstance, ScenarioError> {
        use crate::host::CallControl as _;
        self.register(&call);
        let destination = call.info().destination.clone();
        let instance = self
            .start_instance(scenario, "sim", &destination, serde_json::Value::Null, None)
            .await?;
        instance.on_call(
            call,
            self.call_context("sim", &destination, serde_json::Value::Null),
        )?;
        Ok(instance)
    }

    /// Routes an incoming call by the rules, like the engine does.
    pub async fn dispatch(&self, call: Arc<SimCall>, destination: &str) -> Result<(), RouteError> {
        self.register(&call);
        self.route(call, destination, serde_json::Value::Null).await
    }

    async fn route(
        &self,
        call: Arc<dyn CallControl>,
        destination: &str,
        custom_data: serde_json::Value,
    ) -> Result<(), RouteError> {
        let rule = {
            let inner = self.lock();
            if inner.rules.is_empty() {
                return Ok(());
            }
            inner
                .rules
                .iter()
                .find(|r| glob_match(&r.pattern, destination))
                .cloned()
        };
        let Some(rule) = rule else {
            return Err(RouteError::NoRoute(destination.to_string()));
        };
        let call_ctx = self.call_context(&rule.name, destination, custom_data.clone());
        let failed = |e: ScenarioError| RouteError::Other(e.to_string());
        if !rule.conference {
            let instance = self
                .start_instance(&rule.scenario, &rule.name, destination, custom_data, None)
                .await
                .map_err(failed)?;
            return instance.on_call(call, call_ctx).map_err(failed);
        }
        let _serial = self.conference_starts.lock().await;
        let existing = self
            .lock()
            .conferences
            .get(destination)
            .map(|(i, _)| i.clone());
        if let Some(instance) = existing {
            match instance.on_call(call.clone(), call_ctx.clone()) {
                Ok(()) => return Ok(()),
                Err(ScenarioError::Closed) => {}
                Err(e) => return Err(failed(e)),
            }
        }
        let conference = SimConference::new(destination);
        let control: Arc<dyn ConferenceControl> = conference.clone();
        let instance = self
            .start_instance(
                &rule.scenario,
                &rule.name,
                destination,
                custom_data,
                Some(control),
            )
            .await
            .map_err(failed)?;
        self.lock()
            .conferences
            .insert(destination.to_string(), (instance.clone(), conference));
        instance.on_call(call, call_ctx).map_err(failed)
    }

    async fn start_instance(
        &self,
        scenario: &Scenario,
        rule: &str,
        destination: &str,
        custom_data: serde_json::Value,
        conference: Option<Arc<dyn ConferenceControl>>,
    ) -> Result<ScenarioInstance, ScenarioError> {
        let host: Arc<dyn ScenarioHost> = self
            .this()
            .map_err(|e| ScenarioError::Runtime(e.to_string()))?;
        let ctx = InstanceContext {
            app: self.app.clone(),
            rule: rule.to_string(),
            destination: destination.to_string(),
            custom_data,
        };
        let instance =
            ScenarioInstance::start(scenario, ctx, host, self.limits.clone(), conference).await?;
        self.lock().instances.push(instance.clone());
        Ok(instance)
    }

    fn call_context(
        &self,
        rule: &str,
        destination: &str,
        custom_data: serde_json::Value,
    ) -> CallContext {
        CallContext {
            rule: rule.to_string(),
            destination: destination.to_string(),
            custom_data,
        }
    }

    fn registered(&self, call_id: &str) -> Option<Arc<SimCall>> {
        self.lock().calls.get(call_id).and_then(Weak::upgrade)
    }
}

#[async_trait::async_trait]
impl ScenarioHost for SimHost {
    // TEMPORARY on the engine3 branch (replaced by the scenarios3 branch).
    async fn dial(
        &self,
        _u: &str,
        _o: crate::host::DialOptions,
    ) -> Result<Arc<dyn CallControl>, crate::host::DialError> {
        Err(crate::host::DialError {
            code: 0,
            reason: "sim".into(),
        })
    }
    async fn fetch(
        &self,
        _r: crate::host::FetchRequest,
    ) -> Result<crate::host::FetchResponse, crate::host::FetchError> {
        Err(crate::host::FetchError::Invalid("sim".into()))
    }

    async fn route_to(
        &self,
        call: Arc<dyn CallControl>,
        destination: &str,
        custom_data: serde_json::Value,
    ) -> Result<(), RouteError> {
        let call_id = call.info().id.clone();
        self.lock().routes.push(SimRoute {
            call_id: call_id.clone(),
            destination: destination.to_string(),
            custom_data: custom_data.clone(),
        });
        if let Some(sim) = self.registered(&call_id) {
            sim.note(SimEvent::Routed {
                destination: destination.to_string(),
            });
        }
        self.route(call, destination, custom_data).await
    }

    fn log(&self, call_id: Option<&str>, level: LogLevel, message: &str) {
        if let Some(sim) = call_id.and_then(|id| self.registered(id)) {
            sim.note(SimEvent::Log {
                level,
                message: message.to_string(),
            });
        }
        let at = self.start.elapsed();
        self.lock().logs.push(SimLog {
            at,
            call_id: call_id.map(str::to_string),
            level,
            message: message.to_string(),
        });
    }
}

/// Whole-string match where `*` matches any run of characters.
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(index) => rest = &rest[index + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn glob() {
        assert!(glob_match("conf_*", "conf_1234"));
        assert!(glob_match("conf_*", "conf_"));
        assert!(!glob_match("conf_*", "xconf_1"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXcYYb"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exact1"));
        assert!(!glob_match("ab*ba", "aba"));
    }
}
