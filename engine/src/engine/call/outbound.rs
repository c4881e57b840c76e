//! Calls placed by `dial`: offer, wait for the answer (or give up), then a
//! [`Call`] like any other, owned by the scenario instance that dialed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use switchboard_media::Codec;
use switchboard_scenarios::{CallInfo, CallState, DialError, DialOptions};
use switchboard_sip::{sdp, CallEvent, DialRequest};
use tracing::info;

use super::{Call, Direction, Stream};
use crate::app::Application;
use crate::engine::dispatch::SUPPORTED_CODECS;
use crate::engine::events::EngineEvent;
use crate::engine::EngineInner;

/// The payload type we offer Opus at (dynamic; the usual choice).
const OPUS_PAYLOAD_TYPE: u8 = 111;
/// Telephone-event payload types we offer, one per clock rate.
const TELEPHONE_EVENTS: &[(u8, u32)] = &[(101, 8000), (110, 48_000)];

fn failure(code: u16, reason: impl Into<String>) -> DialError {
    DialError {
        code,
        reason: reason.into(),
    }
}

/// How we offer `codec`: Opus as RFC 7587 says (always `/2` in the rtpmap,
/// mono and in-band FEC by fmtp), G.711 at its static payload type.
fn offered_format(codec: Codec) -> sdp::Format {
    match codec.static_payload_type() {
        Some(payload_type) => sdp::Format {
            payload_type,
            encoding: codec.encoding_name().to_string(),
            clock_rate: codec.rtp_clock_rate(),
            channels: 1,
            fmtp: None,
        },
        None => sdp::Format {
            payload_type: OPUS_PAYLOAD_TYPE,
            encoding: codec.encoding_name().to_string(),
            clock_rate: codec.rtp_clock_rate(),
            channels: 2,
            fmtp: Some("minptime=10;useinbandfec=1".into()),
        },
    }
}

/// Places a call to `uri` for `app`; resolves once it is answered.
pub(crate) async fn dial(
    engine: &Arc<EngineInner>,
    app: &Arc<Application>,
    uri: &str,
    opts: DialOptions,
) -> Result<Arc<Call>, DialError> {
    let uri = uri.trim();
    if !(uri.starts_with("sip:") || uri.starts_with("sips:")) || uri.contains(['\r', '\n', ' ']) {
        return Err(failure(0, format!("{uri:?} is not a sip: URI")));
    }
    for (name, value) in &opts.headers {
        if !name.to_ascii_lowercase().starts_with("x-") || value.contains(['\r', '\n']) {
            return Err(failure(
                0,
                format!("only X- headers can be set, not {name:?}"),
            ));
        }
    }
    let socket = engine
        .media
        .allocate_socket()
        .map_err(|e| failure(503, format!("no RTP port: {e}")))?;
    let target_ip = crate::engine::uri::host(uri).parse::<IpAddr>().ok();
    let local = advertise(engine, socket.local_addr(), target_ip);
    let formats: Vec<sdp::Format> = SUPPORTED_CODECS
        .iter()
        .filter_map(|(encoding, rate)| Codec::from_encoding(encoding, *rate))
        .map(offered_format)
        .collect();
    let offer = sdp::write_offer(
        local,
        rand::random::<u32>() as u64,
        &formats,
        TELEPHONE_EVENTS,
    );
    let from = match opts.from {
        Some(from) => from,
        None => format!("<sip:switchboard@{}>", sip_host(engine, local.ip())),
    };
    let outgoing = engine
        .sip
        .dial(DialRequest {
            uri: uri.to_string(),
            from: from.clone(),
            headers: opts.headers.clone(),
            sdp: offer,
        })
        .await
        .map_err(|e| failure(0, e.to_string()))?;
    let signaling = outgoing.signaling;
    let mut events = outgoing.events;
    info!(call = %signaling.id(), %uri, "dialing");

    let answered = tokio::time::timeout(opts.timeout, async {
        loop {
            match events.recv().await {
                Some(CallEvent::Answered { sdp }) => return Ok(sdp),
                Some(CallEvent::Rejected { status, reason }) => {
                    return Err(failure(status, reason))
                }
                Some(CallEvent::Ended(reason)) => {
                    return Err(failure(0, format!("call ended: {reason:?}")))
                }
                Some(_) => continue,
                None => return Err(failure(0, "signalling stopped")),
            }
        }
    })
    .await;
    let answer = match answered {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            // CANCEL the INVITE.
            let _ = signaling.hangup(Vec::new()).await;
            return Err(failure(
                408,
                format!("no answer within {} ms", opts.timeout.as_millis()),
            ));
        }
    };
    let stream = answer
        .as_deref()
        .ok_or(sdp::SdpError::NoAudio)
        .and_then(sdp::parse_offer)
        .and_then(|answer| sdp::negotiate(&answer, SUPPORTED_CODECS))
        .ok()
        .and_then(|negotiated| {
            let codec =
                Codec::from_encoding(&negotiated.codec.encoding, negotiated.codec.clock_rate)?;
            Some(Stream { negotiated, codec })
        });
    let Some(stream) = stream else {
        let _ = signaling.hangup(Vec::new()).await;
        return Err(failure(488, "the answer has no codec we offered"));
    };

    let info = CallInfo {
        id: signaling.id().to_string(),
        from,
        to: uri.to_string(),
        destination: crate::engine::uri::user(uri)
            .unwrap_or_default()
            .to_string(),
        headers: opts.headers,
        transport: signaling.transport().as_str().to_string(),
        direction: Direction::Outbound.as_str().to_string(),
    };
    let call = Call::build(
        info,
        Direction::Outbound,
        signaling,
        engine,
        app.clone(),
        super::PendingMedia::Rtp(socket),
        CallState::Incoming,
    );
    let _ = call.stream.set(stream);
    engine.calls.insert(call.id().to_string(), call.clone());
    engine.observers.emit(EngineEvent::CallStarted {
        scope: call.scope().clone(),
        call_id: call.id().to_string(),
        from: call.info.from.clone(),
        to: call.info.to.clone(),
        destination: call.info.destination.clone(),
        direction: Direction::Outbound.as_str(),
    });
    call.watch_signaling(events);
    if let Err(e) = call.start_media() {
        let _ = call.signaling.hangup(Vec::new()).await;
        call.mark_ended(&switchboard_sip::EndReason::Local);
        return Err(failure(500, format!("media: {e}")));
    }
    if !call.set_answered() {
        return Err(failure(0, "the call ended as it was answered"));
    }
    info!(call = %call.id(), %uri, "dialed call answered");
    Ok(call)
}

/// Where to advertise RTP for a socket bound to `local`.
fn advertise(engine: &EngineInner, local: SocketAddr, target: Option<IpAddr>) -> SocketAddr {
    if !local.ip().is_unspecified() {
        return local;
    }
    let ip = engine
        .config
        .public_ip
        .or_else(|| target.and_then(super::media::local_ip_toward))
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    SocketAddr::new(ip, local.port())
}

/// Our host for the From header: the SIP listen IP, or the RTP one.
fn sip_host(engine: &EngineInner, fallback: IpAddr) -> String {
    let ip = engine
        .sip
        .local_addr(switchboard_sip::Transport::Udp)
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(fallback);
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    }
}
