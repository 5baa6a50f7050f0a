//! The desktop's one network module, and only transport: the alyxd client (`alyx --backend URL
//! --token T`) on a tokio runtime of its own thread. Features call alyxd through [`Remote`] with
//! their own typed calls; the answers arrive as the feature's own Bevy messages, written into
//! the app at the start of each frame by [`RemotePlugin`]. Nothing in a system blocks, and
//! nothing here knows what a feature asks for.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, Sender, channel, sync_channel};

use alyx_client::Client;
use bevy::prelude::*;

/// Where the backend is and who asks.
#[derive(Clone, Debug)]
pub struct Connection {
    pub url: String,
    pub token: String,
}

/// A message on its way into the app.
type Delivery = Box<dyn FnOnce(&mut World) + Send>;

/// A call waiting for the ones asked before it.
type Call = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The way back into the app: a message sent here is written into the app's `Messages<M>` at
/// the start of the next frame (the feature that expects it registers `M`).
#[derive(Clone)]
pub struct Replies(Sender<Delivery>);

impl Replies {
    /// Sends `message` to the app; false once the app has gone.
    pub fn send<M: Message>(&self, message: M) -> bool {
        self.0
            .send(Box::new(move |world: &mut World| {
                world.write_message(message);
            }))
            .is_ok()
    }
}

/// A call that runs beside the others until its handle is dropped (a live subscription, a
/// notebook's sync session).
#[must_use = "the call stops when its Task is dropped"]
pub struct Task(tokio::task::AbortHandle);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The connection to alyxd: one typed client shared by every call, its runtime, and the way
/// the answers come back. The runtime lives on its own thread and stops when this is dropped.
#[derive(Resource)]
pub struct Remote {
    url: String,
    client: Client,
    runtime: tokio::runtime::Handle,
    calls: tokio::sync::mpsc::UnboundedSender<Call>,
    replies: Replies,
    delivered: Mutex<Receiver<Delivery>>,
}

impl Remote {
    /// Starts the network thread for `connection` (the connection itself is made on first use).
    pub fn connect(connection: &Connection) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the network runtime: {e}"))?;
        let client = {
            let _inside = runtime.enter();
            Client::new(&connection.url, &connection.token).map_err(|e| e.to_string())?
        };
        let handle = runtime.handle().clone();
        let (calls, mut queue) = tokio::sync::mpsc::unbounded_channel::<Call>();
        std::thread::Builder::new()
            .name("alyx-backend-client".into())
            .spawn(move || {
                runtime.block_on(async move {
                    while let Some(call) = queue.recv().await {
                        call.await;
                    }
                });
            })
            .map_err(|e| format!("cannot start the network thread: {e}"))?;
        let (replies, delivered) = channel();
        Ok(Self {
            url: connection.url.clone(),
            client,
            runtime: handle,
            calls,
            replies: Replies(replies),
            delivered: Mutex::new(delivered),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls alyxd after every call made before it (pages and actions are answered in the order
    /// asked); what `call` returns arrives as a message.
    pub fn call<M, F>(&self, call: impl FnOnce(Client) -> F)
    where
        M: Message,
        F: Future<Output = M> + Send + 'static,
    {
        let replies = self.replies.clone();
        let answer = call(self.client.clone());
        let _ = self.calls.send(Box::pin(async move {
            replies.send(answer.await);
        }));
    }

    /// Starts a call that runs beside the others, sending what it likes through `Replies`,
    /// until the returned [`Task`] is dropped.
    pub fn spawn<F>(&self, task: impl FnOnce(Client, Replies) -> F) -> Task
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let running = self
            .runtime
            .spawn(task(self.client.clone(), self.replies.clone()));
        Task(running.abort_handle())
    }

    /// Calls alyxd and waits for the answer: only before the app runs (the first dataset and
    /// event `main` shows).
    pub fn blocking<T, F>(&self, call: impl FnOnce(Client) -> F) -> Result<T, String>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let (answer, answered) = sync_channel(1);
        let asked = call(self.client.clone());
        self.runtime.spawn(async move {
            let _ = answer.send(asked.await);
        });
        answered
            .recv()
            .map_err(|_| "the network runtime stopped".to_owned())
    }

    fn take_delivered(&self) -> Vec<Delivery> {
        let delivered = self.delivered.lock().unwrap_or_else(|p| p.into_inner());
        delivered.try_iter().collect()
    }
}

/// Writes what came back from alyxd into the app, before the features' systems run. Added by
/// the app when it runs with `--backend`, with the [`Remote`] resource.
pub struct RemotePlugin;

impl Plugin for RemotePlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(PreUpdate, deliver);
    }
}

fn deliver(world: &mut World) {
    let Some(due) = world.get_resource::<Remote>().map(Remote::take_delivered) else {
        return;
    };
    for delivery in due {
        delivery(world);
    }
}
