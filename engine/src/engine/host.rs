//! What a scenario instance may ask of the engine: reroute a call, write a
//! log line.

use std::sync::{Arc, Weak};

use switchboard_scenarios::{CallControl, LogLevel, RouteError, ScenarioHost};
use tracing::{debug, error, info, warn};

use super::EngineInner;

pub(crate) struct InstanceHost {
    engine: Weak<EngineInner>,
    scenario: String,
}

impl InstanceHost {
    pub(crate) fn new(engine: &Arc<EngineInner>, scenario: &str) -> InstanceHost {
        InstanceHost {
            engine: Arc::downgrade(engine),
            scenario: scenario.to_string(),
        }
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
        // Only calls of this engine (and so of this application) can be routed.
        let call = engine
            .calls
            .get(&id)
            .map(|c| c.clone())
            .ok_or_else(|| RouteError::Other(format!("call {id} has ended")))?;
        engine.dispatch(call, destination, custom_data).await
    }

    fn log(&self, call_id: Option<&str>, level: LogLevel, message: &str) {
        let call = call_id.and_then(|id| {
            self.engine
                .upgrade()
                .and_then(|e| e.calls.get(id).map(|c| c.clone()))
        });
        match call {
            Some(call) => call.log(level, message),
            None => match level {
                LogLevel::Error => error!(scenario = %self.scenario, "{message}"),
                LogLevel::Warn => warn!(scenario = %self.scenario, "{message}"),
                LogLevel::Info => info!(scenario = %self.scenario, "{message}"),
                LogLevel::Debug => debug!(scenario = %self.scenario, "{message}"),
            },
        }
    }
}
