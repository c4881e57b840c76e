//! A simulated engine: routes calls into new instances by rules (an
//! application's regex rules, or simple globs), one instance per destination
//! for conference rules, the way the engine does; places scripted outbound
//! calls; answers `fetch` from scripted responses; records logs, routes and
//! its own timeline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use switchboard_rules::RuleSet;
use tokio::time::Instant;

use super::call::SimCall;
use super::conference::{SimConference, TalkingProbe};
use super::dial::{reason_phrase, user_of, SimDial, SimFetch};
use super::media::MediaClock;
use super::timeline::{SimEntry, SimEvent, Timeline};
use crate::host::{
    CallControl, ConferenceControl, DialError, DialOptions, FetchError, FetchRequest,
    FetchResponse, LogLevel, RouteError, ScenarioHost,
};
use crate::{CallContext, InstanceContext, Limits, Scenario, ScenarioError, ScenarioInstance};

/// How long a simulated HTTP request takes.
const FETCH_TIME: Duration = Duration::from_millis(50);

/// A routing rule of the simulated application (glob patterns).
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

/// An application's rules and the scenarios they name.
struct App {
    rules: RuleSet,
    scenarios: HashMap<String, Scenario>,
}

struct Inner {
    rules: Vec<SimRule>,
    app: Option<App>,
    logs: Vec<SimLog>,
    routes: Vec<SimRoute>,
    /// Every call, in the order the host learned of it.
    calls: Vec<Arc<SimCall>>,
    instances: Vec<ScenarioInstance>,
    conferences: HashMap<String, (ScenarioInstance, Arc<SimConference>)>,
    /// Conferences in the order they started.
    conference_order: Vec<Arc<SimConference>>,
    dials: Vec<(String, SimDial)>,
    default_dial: SimDial,
    dialed: u32,
    fetch: SimFetch,
    fetch_time: Duration,
    media_lengths: HashMap<String, Duration>,
    timeline: Vec<SimEntry>,
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
                app: None,
                logs: Vec::new(),
                routes: Vec::new(),
                calls: Vec::new(),
                instances: Vec::new(),
                conferences: HashMap::new(),
                conference_order: Vec::new(),
                dials: Vec::new(),
                default_dial: SimDial::default(),
                dialed: 0,
                fetch: SimFetch::default(),
                fetch_time: FETCH_TIME,
                media_lengths: HashMap::new(),
                timeline: Vec::new(),
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

    fn note(&self, event: SimEvent) {
        let at = self.start.elapsed();
        self.lock().timeline.push(SimEntry { at, event });
    }

    /// A note of the simulator in the host's timeline.
    pub(crate) fn note_text(&self, text: &str) {
        self.note(SimEvent::Note {
            text: text.to_string(),
        });
    }

    /// Adds a glob rule; `route_to` then starts instances. Without rules,
    /// routes are only recorded.
    pub fn add_rule(&self, name: &str, pattern: &str, scenario: &Scenario, conference: bool) {
        self.lock().rules.push(SimRule {
            name: name.to_string(),
            pattern: pattern.to_string(),
            scenario: scenario.clone(),
            conference,
        });
    }

    /// Routes by an application's rules (regexes matching the whole
    /// destination), whose scenarios are in `scenarios` by name. Takes
    /// precedence over glob rules.
    pub fn set_application(&self, rules: RuleSet, scenarios: HashMap<String, Scenario>) {
        self.lock().app = Some(App { rules, scenarios });
    }

    /// What dialing a URI matching `pattern` (a glob) does.
    pub fn on_dial(&self, pattern: &str, dial: SimDial) {
        self.lock().dials.push((pattern.to_string(), dial));
    }

    /// What dialing any other URI does (default: answered after 1 s).
    pub fn on_any_dial(&self, dial: SimDial) {
        self.lock().default_dial = dial;
    }

    /// Answers `fetch`es of URLs starting with `prefix`.
    pub fn respond(&self, prefix: &str, status: u16, body: &str) {
        self.lock().fetch.respond(prefix, status, body);
    }

    /// Answers `fetch`es with a function (`None`: not this one).
    pub fn respond_with(
        &self,
        responder: impl Fn(&FetchRequest) -> Option<Result<FetchResponse, FetchError>>
            + Send
            + Sync
            + 'static,
    ) {
        self.lock().fetch.respond_with(responder);
    }

    /// Replaces the scripted fetch answers.
    pub(crate) fn set_fetch(&self, fetch: SimFetch) {
        self.lock().fetch = fetch;
    }

    /// How long each simulated HTTP request takes (default 50 ms).
    pub fn fetch_time(&self, time: Duration) {
        self.lock().fetch_time = time;
    }

    /// How long playing `source` takes on calls the host creates and in
    /// conferences.
    pub fn media_length(&self, source: &str, length: Duration) {
        self.lock().media_lengths.insert(source.to_string(), length);
    }

    /// Lets routes and log lines about `call` show in its timeline.
    pub fn register(&self, call: &Arc<SimCall>) {
        let mut inner = self.lock();
        let id = &call.info().id;
        if !inner.calls.iter().any(|c| c.info().id == *id) {
            inner.calls.push(call.clone());
        }
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

    /// Every call the host knows (registered, routed or dialed), in order.
    pub fn calls(&self) -> Vec<Arc<SimCall>> {
        self.lock().calls.clone()
    }

    /// A call by id.
    pub fn call(&self, id: &str) -> Option<Arc<SimCall>> {
        self.registered(id)
    }

    /// The conference behind a conference destination, once started.
    pub fn conference(&self, destination: &str) -> Option<Arc<SimConference>> {
        self.lock()
            .conferences
            .get(destination)
            .map(|(_, c)| c.clone())
    }

    /// Every conference started, in order.
    pub fn conferences(&self) -> Vec<Arc<SimConference>> {
        self.lock().conference_order.clone()
    }

    /// The host's own events (dials, fetches, log lines of no call).
    pub fn host_timeline(&self) -> Vec<SimEntry> {
        self.lock().timeline.clone()
    }

    /// Everything that happened, merged in time order.
    pub fn timeline(&self) -> Timeline {
        let (host, calls, conferences) = {
            let inner = self.lock();
            (
                inner.timeline.clone(),
                inner.calls.clone(),
                inner.conference_order.clone(),
            )
        };
        let offset = |at: Instant| at.saturating_duration_since(self.start);
        let mut parts = vec![("host".to_string(), Duration::ZERO, host)];
        for call in calls {
            parts.push((
                call.info().id.clone(),
                offset(call.started_at()),
                call.timeline(),
            ));
        }
        for conference in conferences {
            parts.push((
                format!("conf {}", conference.name()),
                offset(conference.started_at()),
                conference.timeline(),
            ));
        }
        Timeline::merge(parts)
    }

    /// Runs `scenario` for `call` in a new (per-call) instance, the way the
    /// engine handles an incoming call. The call is registered.
    pub async fn start_call(
        &self,
        scenario: &Scenario,
        call: Arc<SimCall>,
    ) -> Result<ScenarioInstance, ScenarioError> {
        let destination = call.info().destination.clone();
        let ctx = self.call_context("sim", &destination, serde_json::Value::Null);
        self.start_call_with(scenario, call, ctx).await
    }

    /// Like [`SimHost::start_call`] with the call's `ctx` (rule, destination,
    /// customData).
    pub async fn start_call_with(
        &self,
        scenario: &Scenario,
        call: Arc<SimCall>,
        ctx: CallContext,
    ) -> Result<ScenarioInstance, ScenarioError> {
        self.register(&call);
        let instance = self
            .start_instance(
                scenario,
                &ctx.rule,
                &ctx.destination,
                ctx.custom_data.clone(),
                None,
            )
            .await?;
        instance.on_call(call, ctx)?;
        Ok(instance)
    }

    /// Starts `scenario` the way the HTTP API does: a new instance runs
    /// `onStart(ctx)` with `custom_data`.
    pub async fn start_scenario(
        &self,
        scenario: &Scenario,
        custom_data: serde_json::Value,
    ) -> Result<ScenarioInstance, ScenarioError> {
        let instance = self
            .start_instance(scenario, "start", "", custom_data, None)
            .await?;
        instance.run_on_start()?;
        Ok(instance)
    }

    /// Routes an incoming call by the rules, like the engine does.
    pub async fn dispatch(&self, call: Arc<SimCall>, destination: &str) -> Result<(), RouteError> {
        self.dispatch_with(call, destination, serde_json::Value::Null)
            .await
    }

    /// Like [`SimHost::dispatch`], with `ctx.customData` for the scenario.
    pub async fn dispatch_with(
        &self,
        call: Arc<SimCall>,
        destination: &str,
        custom_data: serde_json::Value,
    ) -> Result<(), RouteError> {
        self.register(&call);
        self.route(call, destination, custom_data).await
    }

    /// The rule for `destination`: (rule name, scenario, conference).
    fn rule_for(&self, destination: &str) -> Option<Result<(String, Scenario, bool), RouteError>> {
        let inner = self.lock();
        if let Some(app) = &inner.app {
            let Some(found) = app.rules.route(destination) else {
                return Some(Err(RouteError::NoRoute(destination.to_string())));
            };
            let rule = found.rule;
            return Some(match app.scenarios.get(&rule.scenario) {
                Some(scenario) => Ok((rule.name.clone(), scenario.clone(), rule.conference)),
                None => Err(RouteError::Other(format!(
                    "rule {} names scenario {}, which the application lacks",
                    rule.name, rule.scenario
                ))),
            });
        }
        if inner.rules.is_empty() {
            return None;
        }
        Some(
            inner
                .rules
                .iter()
                .find(|r| glob_match(&r.pattern, destination))
                .map(|r| (r.name.clone(), r.scenario.clone(), r.conference))
                .ok_or_else(|| RouteError::NoRoute(destination.to_string())),
        )
    }

    async fn route(
        &self,
        call: Arc<dyn CallControl>,
        destination: &str,
        custom_data: serde_json::Value,
    ) -> Result<(), RouteError> {
        let Some(rule) = self.rule_for(destination) else {
            return Ok(());
        };
        let (rule, scenario, conference) = rule?;
        let call_ctx = self.call_context(&rule, destination, custom_data.clone());
        let failed = |e: ScenarioError| RouteError::Other(e.to_string());
        if !conference {
            let instance = self
                .start_instance(&scenario, &rule, destination, custom_data, None)
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
        let conference = self.new_conference(destination);
        let control: Arc<dyn ConferenceControl> = conference.clone();
        let instance = self
            .start_instance(&scenario, &rule, destination, custom_data, Some(control))
            .await
            .map_err(failed)?;
        {
            let mut inner = self.lock();
            inner.conferences.insert(
                destination.to_string(),
                (instance.clone(), conference.clone()),
            );
            inner.conference_order.push(conference);
        }
        instance.on_call(call, call_ctx).map_err(failed)
    }

    fn new_conference(&self, name: &str) -> Arc<SimConference> {
        let host = self.me.clone();
        let probe: TalkingProbe = Arc::new(move |call_id: &str| {
            host.upgrade()
                .and_then(|h| h.registered(call_id))
                .is_some_and(|c| c.is_talking())
        });
        let clock = MediaClock {
            lengths: Arc::new(self.lock().media_lengths.clone()),
            ..MediaClock::default()
        };
        SimConference::build(name, None, Some(probe), clock)
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
        self.lock()
            .calls
            .iter()
            .find(|c| c.info().id == call_id)
            .cloned()
    }

    fn dial_for(&self, uri: &str) -> (SimDial, String, HashMap<String, Duration>) {
        let mut inner = self.lock();
        inner.dialed += 1;
        let id = format!("dial-{}", inner.dialed);
        let dial = inner
            .dials
            .iter()
            .find(|(pattern, _)| glob_match(pattern, uri))
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| inner.default_dial.clone());
        (dial, id, inner.media_lengths.clone())
    }
}

#[async_trait::async_trait]
impl ScenarioHost for SimHost {
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

    async fn dial(&self, uri: &str, opts: DialOptions) -> Result<Arc<dyn CallControl>, DialError> {
        use super::dial::DialOutcome;
        let (dial, id, lengths) = self.dial_for(uri);
        self.note(SimEvent::Dialing {
            uri: uri.to_string(),
        });
        if !opts.headers.is_empty() {
            self.note(SimEvent::SentHeaders {
                headers: opts.headers.clone(),
            });
        }
        let answered = dial.outcome == DialOutcome::Answer;
        let in_time = dial.after <= opts.timeout;
        let wait = match dial.outcome {
            DialOutcome::NoAnswer => opts.timeout,
            _ => dial.after.min(opts.timeout),
        };
        tokio::time::sleep(wait).await;
        let failure = match &dial.outcome {
            DialOutcome::Fail { code, reason } if in_time => Some((*code, reason.clone())),
            _ if !in_time || !answered => Some((408, reason_phrase(408).to_string())),
            _ => None,
        };
        if let Some((code, reason)) = failure {
            self.note(SimEvent::DialFailed {
                uri: uri.to_string(),
                code,
                reason: reason.clone(),
            });
            return Err(DialError { code, reason });
        }
        let builder = SimCall::builder(&id)
            .to(uri)
            .from(opts.from.as_deref().unwrap_or("sip:switchboard@sim"))
            .destination(&user_of(uri))
            .direction("outbound")
            .media_lengths(&lengths)
            .answered();
        let call = dial.script(builder).build();
        call.note(SimEvent::Answered);
        self.register(&call);
        self.note(SimEvent::DialAnswered {
            uri: uri.to_string(),
            call_id: id,
        });
        Ok(call)
    }

    async fn fetch(&self, request: FetchRequest) -> Result<FetchResponse, FetchError> {
        let (answer, time) = {
            let inner = self.lock();
            (inner.fetch.answer(&request), inner.fetch_time)
        };
        let answer = match answer {
            // Refused at once, like an application's allow list.
            Err(FetchError::NotAllowed(host)) => Err(FetchError::NotAllowed(host)),
            _ if time > request.timeout => {
                tokio::time::sleep(request.timeout).await;
                Err(FetchError::Timeout)
            }
            answer => {
                tokio::time::sleep(time).await;
                answer
            }
        };
        let outcome = match &answer {
            Ok(response) => format!("{} ({} bytes)", response.status, response.body.len()),
            Err(error) => error.to_string(),
        };
        self.note(SimEvent::Fetched {
            method: request.method.clone(),
            url: request.url.clone(),
            outcome,
        });
        answer
    }

    fn log(&self, call_id: Option<&str>, level: LogLevel, message: &str) {
        let call = call_id.and_then(|id| self.registered(id));
        let event = SimEvent::Log {
            level,
            message: message.to_string(),
        };
        match &call {
            Some(sim) => sim.note(event),
            None => self.note(event),
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
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
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
