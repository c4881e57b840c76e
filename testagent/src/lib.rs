//! SIP test agent (in progress).
