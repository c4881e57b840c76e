//! The event loop of one instance: every input (a call handed over, a call or
//! conference event, a finished host operation, a due timer) is one turn
//! (see [`crate::turn`]); when a turn says the instance is done or failed,
//! the loop tears it down.

use std::sync::Arc;

use rquickjs::{AsyncContext, AsyncRuntime, Ctx};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tokio::time::{Duration, Instant};

use crate::calls;
use crate::host::{CallControl, LogLevel, ScenarioHost};
use crate::instance::Gate;
use crate::state::{Failure, JsState, Msg, OpId, OpResult};
use crate::turn::{turn, Input, Verdict};

/// How long ending the calls of a failed instance may take.
const END_CALLS_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Driver {
    pub runtime: AsyncRuntime,
    pub context: AsyncContext,
    pub rx: UnboundedReceiver<Msg>,
    pub gate: Arc<Gate>,
    pub closed: watch::Sender<bool>,
    pub host: Arc<dyn ScenarioHost>,
    pub scenario: String,
    pub memory_limit: usize,
    pub wake: Option<Instant>,
    pub conference_pump: Option<JoinHandle<()>>,
}

impl Driver {
    pub(crate) async fn run(mut self) {
        let failure = loop {
            let input = tokio::select! {
                biased;
                msg = self.rx.recv() => match msg {
                    Some(msg) => Input::Msg(msg),
                    None => break None,
                },
                _ = sleep_until(self.wake) => Input::Wake,
            };
            match self.context.with(|ctx| turn(&ctx, input)).await {
                Verdict::Continue(wake) => self.wake = wake,
                Verdict::End => {
                    if self.gate.close_if_idle(&self.rx) {
                        break None;
                    }
                    // A message arrived meanwhile (maybe a new call): handle it first.
                }
                Verdict::Fail(failure) => break Some(failure),
            }
        };
        self.teardown(failure).await;
    }

    /// Ends the instance: no more calls are accepted, the JavaScript state is
    /// dropped, and on failure the remaining calls are ended cleanly.
    pub(crate) async fn teardown(mut self, failure: Option<Failure>) {
        self.gate.close();
        self.rx.close();
        let mut leftovers = Vec::new();
        while let Ok(msg) = self.rx.try_recv() {
            leftovers.push(msg);
        }
        if let Some(pump) = self.conference_pump.take() {
            pump.abort();
        }
        let remains = self.context.with(|ctx| dismantle(&ctx)).await;
        for abort in &remains.aborts {
            abort.abort();
        }
        let mut to_end: Vec<Arc<dyn CallControl>> = Vec::new();
        let reason = failure.as_ref().map(|f| {
            format!(
                "scenario {} failed: {}",
                self.scenario,
                explain(f, self.memory_limit)
            )
        });
        if let Some(reason) = &reason {
            if remains.calls.is_empty() {
                self.host.log(
                    failure.as_ref().and_then(|f| f.call.as_deref()),
                    LogLevel::Error,
                    reason,
                );
            }
            for call in &remains.calls {
                self.host
                    .log(Some(&call.info().id), LogLevel::Error, reason);
            }
        }
        // A normal end has no calls left; anything still here must not be orphaned.
        to_end.extend(remains.calls);
        for msg in leftovers {
            match msg {
                Msg::NewCall { call, .. } => {
                    self.host.log(
                        Some(&call.info().id),
                        LogLevel::Error,
                        reason.as_deref().unwrap_or("the scenario instance ended"),
                    );
                    to_end.push(call);
                }
                Msg::OpDone {
                    op,
                    result: OpResult::Route(Err(_)),
                } => {
                    if let Some((_, call)) = remains.routing.iter().find(|(o, _)| *o == op) {
                        to_end.push(call.clone());
                    }
                }
                // Answered just as the instance ended: nobody owns it.
                Msg::OpDone {
                    result: OpResult::Dial(Ok(call)),
                    ..
                } => to_end.push(call),
                _ => {}
            }
        }
        end_calls(to_end).await;
        drop(self.context);
        drop(self.runtime);
        self.closed.send_replace(true);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Ends calls concurrently: reject(500) if unanswered, else hang up.
async fn end_calls(calls: Vec<Arc<dyn CallControl>>) {
    if calls.is_empty() {
        return;
    }
    let mut tasks = JoinSet::new();
    for call in calls {
        tasks.spawn(async move {
            let _ = calls::end_call(call.as_ref(), 500).await;
        });
    }
    let _ = tokio::time::timeout(END_CALLS_TIMEOUT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

/// A failure in words for the log.
pub(crate) fn explain(failure: &Failure, memory_limit: usize) -> String {
    if failure.message.contains("out of memory") {
        format!(
            "memory limit exceeded ({memory_limit} bytes): {}",
            failure.message
        )
    } else {
        failure.message.clone()
    }
}

/// What is left of an instance once its JavaScript state is dropped.
pub(crate) struct Remains {
    /// Owned calls (not being handed over).
    pub calls: Vec<Arc<dyn CallControl>>,
    /// Calls being handed over, by the operation doing it.
    pub routing: Vec<(OpId, Arc<dyn CallControl>)>,
    pub aborts: Vec<AbortHandle>,
}

fn dismantle(ctx: &Ctx<'_>) -> Remains {
    let mut remains = Remains {
        calls: Vec::new(),
        routing: Vec::new(),
        aborts: Vec::new(),
    };
    let Ok(Some(st)) = ctx.remove_userdata::<JsState>() else {
        return remains;
    };
    let mut inner = st.inner.borrow_mut();
    let ops = std::mem::take(&mut inner.ops);
    for (op, pending) in ops {
        match pending.abort {
            Some(abort) => remains.aborts.push(abort),
            None => {
                let routed = pending.slot.and_then(|s| inner.calls.get(&s));
                if let Some(call) = routed {
                    remains.routing.push((op, call.control.clone()));
                }
            }
        }
    }
    for (_, call) in std::mem::take(&mut inner.calls) {
        if let Some(pump) = &call.pump {
            pump.task.abort();
        }
        if call.routing.is_none() {
            remains.calls.push(call.control.clone());
        }
    }
    drop(inner.timers.clear());
    drop(inner);
    // The JavaScript values go here, while the runtime is locked.
    drop(st);
    remains
}
