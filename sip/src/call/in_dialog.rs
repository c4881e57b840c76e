//! Requests inside a dialog: BYE, INFO, OPTIONS, re-INVITE.

use std::sync::Arc;

use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, Response, SipMessage, StatusCode, StatusCodeKind};
use rsipstack::transaction::transaction::Transaction;
use tracing::debug;

use super::Call;
use crate::message;

/// Handles one in-dialog request (the dispatcher matched its dialog).
pub(crate) async fn handle(call: Arc<Call>, mut tx: Transaction) {
    let Ok(cseq) = tx.original.cseq_header().and_then(|c| c.seq()) else {
        return;
    };
    if !call.accept_remote_cseq(cseq) {
        // RFC 3261 §12.2.2: out of order.
        let reason = Some("CSeq out of order");
        reply(&call, &mut tx, message::status(500, reason)).await;
        return;
    }
    match tx.original.method {
        Method::Bye => {
            let ended = call.on_bye();
            reply(&call, &mut tx, StatusCode::OK).await;
            if ended {
                call.retire();
            }
        }
        Method::Info => {
            let content_type = tx.original.headers.iter().find_map(|h| match h {
                Header::ContentType(content_type) => Some(content_type.value().to_string()),
                _ => None,
            });
            let body = std::mem::take(&mut tx.original.body);
            let status = if call.on_info(content_type, body) {
                StatusCode::OK
            } else {
                StatusCode::CallTransactionDoesNotExist
            };
            reply(&call, &mut tx, status).await;
        }
        Method::Options => {
            let mut response = message::response(&tx.original, StatusCode::OK, None);
            message::add_capabilities(&mut response);
            message::finish(&mut response, &call.core.user_agent, None);
            send(&mut tx, response).await;
        }
        Method::Invite => reinvite(call, tx).await,
        // The dispatcher lets only implemented methods through.
        _ => {
            let mut response = message::response(&tx.original, StatusCode::MethodNotAllowed, None);
            message::add_capabilities(&mut response);
            message::finish(&mut response, &call.core.user_agent, None);
            send(&mut tx, response).await;
        }
    }
}

async fn reply(call: &Call, tx: &mut Transaction, status: StatusCode) {
    let mut response = message::response(&tx.original, status, None);
    message::finish(&mut response, &call.core.user_agent, None);
    send(tx, response).await;
}

async fn send(tx: &mut Transaction, response: Response) {
    if let Err(e) = tx.respond(response).await {
        debug!(key = %tx.key, error = %e, "cannot send in-dialog response");
    }
}

/// Answers a re-INVITE and runs its transaction until the ACK; a 2xx never
/// acknowledged ends the call like the first one (RFC 3261 §13.3.1.4).
async fn reinvite(call: Arc<Call>, mut tx: Transaction) {
    let response = call.reinvite_response(&tx.original);
    let accepted = response.status_code.kind() == StatusCodeKind::Successful;
    debug!(call = %call.id, status = %response.status_code, "re-INVITE");
    if let Err(e) = tx.respond(response).await {
        debug!(call = %call.id, error = %e, "cannot answer re-INVITE");
        return;
    }
    let acked = call
        .core
        .until_shutdown(async {
            while let Some(message) = tx.receive().await {
                if matches!(&message, SipMessage::Request(r) if r.method == Method::Ack) && accepted
                {
                    return true;
                }
            }
            false
        })
        .await;
    if accepted && acked == Some(false) {
        call.end_unacknowledged().await;
    }
}
