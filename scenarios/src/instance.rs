//! Starting an instance and the handle the engine keeps to it.

use std::sync::{Arc, Mutex, MutexGuard};

use rquickjs::runtime::AsyncWeakRuntime;
use rquickjs::{AsyncContext, AsyncRuntime, Ctx, Persistent, Value};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;

use crate::compile::{BytecodeLoader, BytecodeResolver};
use crate::cpu::CpuGuard;
use crate::driver::{self, Driver};
use crate::host::{CallControl, ConferenceControl, ScenarioHost};
use crate::state::{Env, JsState, Msg, Rejection};
use crate::turn::{self, Verdict};
use crate::{CallContext, InstanceContext, Limits, MemoryUsage, Scenario, ScenarioError};

/// QuickJS stack limit: deep enough for scenarios, well inside a tokio worker's stack.
const MAX_STACK_BYTES: usize = 512 * 1024;

/// Whether the instance still takes calls. `on_call` sends under the lock and
/// the loop closes it only when no message waits, so no call is ever lost
/// between an instance deciding to end and a call arriving.
pub(crate) struct Gate {
    accepting: Mutex<bool>,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            accepting: Mutex::new(true),
        }
    }

    fn lock(&self) -> MutexGuard<'_, bool> {
        self.accepting.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn close(&self) {
        *self.lock() = false;
    }

    /// Closes the gate unless a message waits (the loop handles it first).
    pub fn close_if_idle(&self, rx: &UnboundedReceiver<Msg>) -> bool {
        let mut accepting = self.lock();
        if !rx.is_empty() {
            return false;
        }
        *accepting = false;
        true
    }
}

pub(crate) struct Handle {
    gate: Arc<Gate>,
    tx: UnboundedSender<Msg>,
    closed: watch::Receiver<bool>,
    scenario: String,
    runtime: AsyncWeakRuntime,
}

impl Handle {
    pub fn on_call(
        &self,
        call: Arc<dyn CallControl>,
        ctx: CallContext,
    ) -> Result<(), ScenarioError> {
        let accepting = self.gate.lock();
        if !*accepting {
            return Err(ScenarioError::Closed);
        }
        self.tx
            .send(Msg::NewCall { call, ctx })
            .map_err(|_| ScenarioError::Closed)
    }

    pub fn run_on_start(&self) -> Result<(), ScenarioError> {
        let accepting = self.gate.lock();
        if !*accepting {
            return Err(ScenarioError::Closed);
        }
        self.tx.send(Msg::Start).map_err(|_| ScenarioError::Closed)
    }

    pub async fn memory_usage(&self) -> Option<MemoryUsage> {
        let runtime = self.runtime.try_ref()?;
        if self.is_closed() {
            return None;
        }
        let usage = runtime.memory_usage().await;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Some(MemoryUsage {
            allocated_bytes: count(usage.malloc_size),
            allocations: count(usage.malloc_count),
            objects: count(usage.obj_count),
        })
    }

    pub async fn closed(&self) {
        let mut closed = self.closed.clone();
        // An error means the loop is gone (which also means closed).
        let _ = closed.wait_for(|c| *c).await;
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow() || self.closed.has_changed().is_err()
    }

    pub fn scenario_name(&self) -> &str {
        &self.scenario
    }
}

pub(crate) async fn start(
    scenario: &Scenario,
    instance: InstanceContext,
    host: Arc<dyn ScenarioHost>,
    limits: Limits,
    conference: Option<Arc<dyn ConferenceControl>>,
) -> Result<Handle, ScenarioError> {
    let setup = |e: rquickjs::Error| {
        ScenarioError::Runtime(format!("cannot create a JavaScript runtime: {e}"))
    };
    let runtime = AsyncRuntime::new().map_err(setup)?;
    runtime.set_memory_limit(limits.memory_bytes).await;
    runtime.set_max_stack_size(MAX_STACK_BYTES).await;
    let cpu = CpuGuard::new(limits.cpu_per_callback);
    let guard = cpu.clone();
    runtime
        .set_interrupt_handler(Some(Box::new(move || guard.should_interrupt())))
        .await;
    runtime
        .set_host_promise_rejection_tracker(Some(Box::new(track_rejection)))
        .await;
    let compiled = scenario.compiled.clone();
    if !compiled.modules.is_empty() {
        let resolver = BytecodeResolver {
            main: compiled.name.clone(),
            modules: compiled.modules.clone(),
        };
        runtime
            .set_loader(resolver, BytecodeLoader(compiled.modules.clone()))
            .await;
    }
    let context = AsyncContext::full(&runtime).await.map_err(setup)?;

    let (tx, rx) = mpsc::unbounded_channel();
    let scenario_name = scenario.name().to_string();
    let memory_limit = limits.memory_bytes;
    let env = Env {
        host: host.clone(),
        limits,
        instance,
        tx: tx.clone(),
        conference: conference.clone(),
        cpu,
    };
    let verdict = context
        .with(|ctx| turn::first_turn(&ctx, env, &compiled.bytecode))
        .await;

    let (closed_tx, closed_rx) = watch::channel(false);
    let gate = Arc::new(Gate::new());
    let weak_runtime = runtime.weak();
    let mut driver = Driver {
        runtime,
        context,
        rx,
        gate: gate.clone(),
        closed: closed_tx,
        host,
        scenario: scenario_name.clone(),
        memory_limit,
        wake: None,
        conference_pump: None,
    };
    match verdict {
        Verdict::Fail(failure) => {
            let message = driver::explain(&failure, memory_limit);
            driver.teardown(Some(failure)).await;
            return Err(ScenarioError::Runtime(message));
        }
        Verdict::Continue(wake) => driver.wake = wake,
        Verdict::End => {}
    }
    if let Some(conference) = conference {
        driver.conference_pump = Some(tokio::spawn(pump_conference(conference, tx.clone())));
    }
    tokio::spawn(driver.run());
    Ok(Handle {
        gate,
        tx,
        closed: closed_rx,
        scenario: scenario_name,
        runtime: weak_runtime,
    })
}

/// Reads the conference's events into the loop.
async fn pump_conference(conference: Arc<dyn ConferenceControl>, tx: UnboundedSender<Msg>) {
    loop {
        let event = conference.next_event().await;
        let last = event.is_none();
        if tx.send(Msg::Conference(event)).is_err() || last {
            return;
        }
    }
}

/// QuickJS reports promises rejected without a handler (and handlers added
/// later); what is still unhandled at the end of a turn is fatal.
fn track_rejection<'js>(ctx: Ctx<'js>, promise: Value<'js>, reason: Value<'js>, handled: bool) {
    let Some(st) = ctx.userdata::<JsState>() else {
        return;
    };
    let promise = Persistent::save(&ctx, promise);
    let Ok(mut rejections) = st.rejections.try_borrow_mut() else {
        return;
    };
    if handled {
        rejections.retain(|r| r.promise != promise);
    } else {
        rejections.push(Rejection {
            promise,
            reason: Persistent::save(&ctx, reason),
        });
    }
}
