//! A client without a socket: commands run in-process against a [`ServerState`], one at a
//! time, exactly as a connection's would (the same dispatcher, session state, transactions and
//! tracking), with replies returned as frames. What the fuzz targets drive, and a way to use
//! the command set from Rust without a network round trip.

use crate::clients::ClientInfo;
use crate::cmd::{Ctx, Session, dispatch_command};
use crate::frame::Frame;
use crate::keyspace::Changes;
use crate::limits::Limits;
use crate::pubsub::PushReceiver;
use crate::state::ServerState;
use bytes::Bytes;
use std::sync::Arc;

/// One in-process client of a [`ServerState`]. Pushes addressed to it (pub/sub messages,
/// tracking invalidations) are queued and can be taken with [`LocalClient::take_pushes`].
#[derive(Debug)]
pub struct LocalClient {
    state: Arc<ServerState>,
    session: Session,
    written: Changes,
    pushes: PushReceiver,
}

impl LocalClient {
    /// A client of `state` under `limits`, registered as client `id` (it shows in CLIENT
    /// LIST; ids should not collide with the server's own connections, which count from 1).
    pub fn new(state: Arc<ServerState>, limits: Arc<Limits>, id: u64) -> LocalClient {
        let (pushes, rx) = crate::pubsub::channel(limits.clone());
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let info = Arc::new(ClientInfo::new(id, addr, addr, -1, pushes.clone()));
        state.clients().register(info.clone());
        LocalClient {
            session: Session::new(info, pushes, limits),
            state,
            written: Changes::default(),
            pushes: rx,
        }
    }

    /// Runs one request (name first) and returns its reply, errors included. A blocking
    /// command (BLPOP, ...) that would wait replies as if it timed out at once.
    pub fn run(&mut self, args: Vec<Bytes>) -> Frame {
        if args.is_empty() {
            return Frame::Error("ERR empty request".into());
        }
        self.written.reset(self.state.records_changes());
        let mut cx = Ctx::new(&self.state, &mut self.session, &mut self.written);
        let (reply, _) = dispatch_command(args, &mut cx);
        drop(cx);
        match self.session.blocked.take() {
            Some(blocked) => {
                // Registered on its keys by the command: give the registration up.
                self.state.keyspace().blocking().unregister(&blocked.waiter);
                blocked.timeout_reply
            }
            None => reply,
        }
    }

    /// The pushes queued for this client so far.
    pub fn take_pushes(&mut self) -> Vec<Frame> {
        std::iter::from_fn(|| self.pushes.try_recv()).collect()
    }

    /// The server state the client runs against.
    pub fn state(&self) -> &ServerState {
        &self.state
    }
}

impl Drop for LocalClient {
    fn drop(&mut self) {
        self.session.leave_pubsub(&self.state);
        self.state.tracking().disable(self.session.id);
        self.state.clients().unregister(self.session.id);
    }
}
