//! What to do with each new server transaction rsipstack creates (every
//! request except ACK and CANCEL, which it matches to their INVITE):
//! method check (405), Require check (420), then a new call, an in-dialog
//! request, an OPTIONS ping, or 481 for a dialog we do not know.

use std::sync::Arc;

use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, Request, StatusCode, Unsupported};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transaction::TransactionReceiver;
use tracing::debug;

use crate::call::{in_dialog, invite};
use crate::endpoint::EndpointCore;
use crate::message;

/// Methods we answer; anything else parsed gets 405 (unparsed ones get 501
/// in `wire`).
const IMPLEMENTED: &[Method] = &[
    Method::Invite,
    Method::Ack,
    Method::Cancel,
    Method::Bye,
    Method::Options,
    Method::Info,
];

pub(crate) async fn run(core: Arc<EndpointCore>, mut transactions: TransactionReceiver) {
    loop {
        let tx = tokio::select! {
            _ = core.cancel.cancelled() => break,
            tx = transactions.recv() => match tx {
                Some(tx) => tx,
                None => break,
            },
        };
        route(&core, tx);
    }
    debug!("SIP dispatcher stopped");
}

fn route(core: &Arc<EndpointCore>, tx: Transaction) {
    let method = tx.original.method;
    if !IMPLEMENTED.contains(&method) {
        let mut response = message::response(&tx.original, StatusCode::MethodNotAllowed, None);
        message::add_capabilities(&mut response);
        message::finish(&mut response, &core.user_agent, None);
        spawn_reply(core, tx, response);
        return;
    }
    if let Some(unsupported) = unsupported_requirements(&tx.original) {
        let mut response = message::response(&tx.original, StatusCode::BadExtension, None);
        response
            .headers
            .push(Header::Unsupported(Unsupported::new(unsupported)));
        message::finish(&mut response, &core.user_agent, None);
        spawn_reply(core, tx, response);
        return;
    }
    let to_tag = tx
        .original
        .to_header()
        .ok()
        .and_then(|to| to.tag().ok().flatten())
        .map(|tag| tag.value().to_string());
    match (method, to_tag) {
        (Method::Invite, None) => invite::accept(core, tx),
        (Method::Options, None) => {
            let mut response = message::response(&tx.original, StatusCode::OK, None);
            message::add_capabilities(&mut response);
            message::finish(&mut response, &core.user_agent, None);
            spawn_reply(core, tx, response);
        }
        (_, Some(tag)) => match core.registry.find(&tag, &tx.original) {
            Some(call) => {
                tokio::spawn(in_dialog::handle(call, tx));
            }
            None => no_dialog(core, tx),
        },
        // BYE, INFO without a To tag: not in any dialog.
        (_, None) => no_dialog(core, tx),
    }
}

/// 481 (RFC 3261 §12.2.2).
fn no_dialog(core: &Arc<EndpointCore>, tx: Transaction) {
    debug!(method = %tx.original.method, "request for an unknown dialog");
    let mut response =
        message::response(&tx.original, StatusCode::CallTransactionDoesNotExist, None);
    message::finish(&mut response, &core.user_agent, None);
    spawn_reply(core, tx, response);
}

/// The option tags in Require we do not support (we support none);
/// RFC 3261 §8.2.2.3 answers them with 420.
fn unsupported_requirements(request: &Request) -> Option<String> {
    let tags: Vec<&str> = request
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::Require(require) => Some(require.value()),
            _ => None,
        })
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .collect();
    (!tags.is_empty()).then(|| tags.join(", "))
}

/// Sends a final response on its own task; an INVITE transaction is then
/// kept until its ACK (or Timer H) so retransmissions are answered.
pub(crate) fn spawn_reply(
    core: &Arc<EndpointCore>,
    mut tx: Transaction,
    response: rsipstack::sip::Response,
) {
    let core = core.clone();
    tokio::spawn(async move {
        if let Err(e) = tx.respond(response).await {
            debug!(key = %tx.key, error = %e, "cannot send response");
            return;
        }
        if tx.original.method == Method::Invite {
            core.until_shutdown(async { while tx.receive().await.is_some() {} })
                .await;
        }
    });
}
