//! What a scenario instance may ask of the engine: reroute a call, write a
//! log line.

use std::sync::{Arc, Weak};

use switchboard_scenarios::{
    CallControl, DialError, DialOptions, FetchError, FetchRequest, FetchResponse, LogLevel,
    RouteError, ScenarioHost,
};
use tracing::{debug, error, info, warn};

use super::events::{EngineEvent, LogLine, Scope};
use super::{Call, EngineInner};
use crate::app::Application;

pub(crate) struct InstanceHost {
    engine: Weak<EngineInner>,
    app: Arc<Application>,
    scope: Scope,
    scenario: String,
}

impl InstanceHost {
    pub(crate) fn new(
        engine: &Arc<EngineInner>,
        app: &Arc<Application>,
        scenario: &str,
    ) -> InstanceHost {
        InstanceHost {
            engine: Arc::downgrade(engine),
            app: app.clone(),
            scope: Scope {
                account: app.account.clone(),
                app: app.id.clone(),
            },
            scenario: scenario.to_string(),
        }
    }

    /// A call of this engine that belongs to this instance's application.
    fn own_call(&self, engine: &EngineInner, id: &str) -> Option<Arc<Call>> {
        engine
            .calls
            .get(id)
            .map(|c| c.clone())
            .filter(|c| Arc::ptr_eq(c.app(), &self.app) || c.app().id == self.app.id)
    }
}

#[async_trait::async_trait]
impl ScenarioHost for InstanceHost {
    async fn route_to(
        &self,
        call: Arc<dyn CallControl>,
        destination: &str,
        custom_data: serde_json::Value,
    ) -> Result<(), RouteError> {
        let engine = self
            .engine
            .upgrade()
            .ok_or_else(|| RouteError::Other("engine stopped".into()))?;
        let id = call.info().id.clone();
        // Only calls of this engine and this application can be routed.
        let call = self
            .own_call(&engine, &id)
            .ok_or_else(|| RouteError::Other(format!("call {id} has ended")))?;
        engine.dispatch(call, destination, custom_data).await
    }

    async fn dial(&self, uri: &str, opts: DialOptions) -> Result<Arc<dyn CallControl>, DialError> {
        let engine = self.engine.upgrade().ok_or(DialError {
            code: 0,
            reason: "engine stopped".into(),
        })?;
        if engine
            .shutting_down
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(DialError {
                code: 503,
                reason: "shutting down".into(),
            });
        }
        let call = super::call::dial(&engine, &self.app, uri, opts).await?;
        Ok(call)
    }

    async fn fetch(&self, request: FetchRequest) -> Result<FetchResponse, FetchError> {
        let engine = self
            .engine
            .upgrade()
            .ok_or_else(|| FetchError::Network("engine stopped".into()))?;
        crate::fetch::fetch(&engine.http, &self.app, request).await
    }

    fn log(&self, call_id: Option<&str>, level: LogLevel, message: &str) {
        let Some(engine) = self.engine.upgrade() else {
            return;
        };
        if level == LogLevel::Error {
            engine
                .stats
                .scenario_errors
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            engine.observers.emit(EngineEvent::ScenarioError {
                scope: self.scope.clone(),
                scenario: self.scenario.clone(),
                call_id: call_id.map(str::to_string),
                message: message.to_string(),
            });
        }
        match call_id.and_then(|id| self.own_call(&engine, id)) {
            Some(call) => call.log(level, message),
            None => {
                let (app, scenario) = (&self.scope.app, &self.scenario);
                match level {
                    LogLevel::Error => error!(%app, %scenario, "{message}"),
                    LogLevel::Warn => warn!(%app, %scenario, "{message}"),
                    LogLevel::Info => info!(%app, %scenario, "{message}"),
                    LogLevel::Debug => debug!(%app, %scenario, "{message}"),
                }
                engine.observers.emit(EngineEvent::Log {
                    scope: self.scope.clone(),
                    call_id: None,
                    line: LogLine {
                        at: std::time::SystemTime::now(),
                        level,
                        message: message.to_string(),
                    },
                });
            }
        }
    }
}
