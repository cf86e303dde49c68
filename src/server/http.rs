//! The HTTP side: routes, the WebSocket upgrade, the registry of scenes in memory,
//! and the graceful shutdown.
//!
//! Routes: `GET /healthz`, `GET /metrics` (Prometheus text), `GET /scenes` (the
//! scenes in memory and on disk), `GET /scenes/{scene}` (a WebSocket upgrade joins the
//! scene; a plain GET returns its canonical state JSON, `?format=snapshot` the
//! engine's snapshot bytes).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

use super::auth::{Access, AuthError};
use super::conn::{self, ConnId};
use super::metrics::Metrics;
use super::scene::{Cmd, ReadReply, Scene, SceneHandle};
use super::{ServerConfig, Storage, valid_scene_name};
use crate::persist::{DurableOptions, LocalLog, MemoryLog, SceneLog, group_commit};

/// What every handler shares.
pub(crate) struct AppState {
    pub config: ServerConfig,
    pub metrics: Arc<Metrics>,
    scenes: Mutex<HashMap<String, SceneHandle>>,
    conns: AtomicUsize,
    next_conn: AtomicU64,
    stopping: AtomicBool,
}

/// Why a scene could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("too many scenes in memory (limit {0})")]
    TooMany(usize),
    #[error("the server is shutting down")]
    Stopping,
    #[error("cannot open the scene: {0}")]
    Storage(String),
}

impl AppState {
    pub fn new(config: ServerConfig) -> AppState {
        AppState {
            config,
            metrics: Arc::new(Metrics::new()),
            scenes: Mutex::new(HashMap::new()),
            conns: AtomicUsize::new(0),
            next_conn: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
        }
    }

    pub fn next_conn(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    pub fn release_conn(&self) {
        self.conns.fetch_sub(1, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SceneHandle>> {
        self.scenes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The running scene `name`, opened (recovered from its directory) if needed.
    pub async fn scene(self: &Arc<Self>, name: &str) -> Result<SceneHandle, OpenError> {
        if self.stopping.load(Ordering::Relaxed) {
            return Err(OpenError::Stopping);
        }
        {
            let scenes = self.lock();
            if let Some(h) = scenes.get(name).filter(|h| !h.tx.is_closed()) {
                return Ok(h.clone());
            }
            // Refuse before opening anything (no directory for a refused scene).
            if scenes.len() >= self.config.limits.max_scenes {
                return Err(OpenError::TooMany(self.config.limits.max_scenes));
            }
        }
        // Open outside the lock (recovery reads files), then register; if another
        // connection registered the scene meanwhile, use that one.
        let (replica, log) = self.open_log(name).await?;
        let mut scenes = self.lock();
        if let Some(h) = scenes.get(name).filter(|h| !h.tx.is_closed()) {
            return Ok(h.clone());
        }
        if scenes.len() >= self.config.limits.max_scenes {
            return Err(OpenError::TooMany(self.config.limits.max_scenes));
        }
        let (tx, rx) = mpsc::channel(65_536);
        let handle = SceneHandle {
            tx,
            conns: Arc::new(AtomicUsize::new(0)),
        };
        scenes.insert(name.to_owned(), handle.clone());
        self.metrics
            .scenes
            .set(i64::try_from(scenes.len()).unwrap_or(i64::MAX));
        drop(scenes);
        let scene = Scene::new(
            name.to_owned(),
            replica,
            log,
            Arc::clone(&self.metrics),
            &self.config,
        );
        let app = Arc::clone(self);
        let key = name.to_owned();
        let conns = Arc::clone(&handle.conns);
        // A scene in memory has nowhere to be recovered from: it is never unloaded
        // (it lives as long as the process, as `Storage::Memory` promises).
        let idle = match self.config.storage {
            Storage::Memory => std::time::Duration::MAX,
            Storage::Dir(_) => self.config.limits.idle_unload,
        };
        tokio::spawn(async move {
            let unload = {
                let app = Arc::clone(&app);
                let key = key.clone();
                move || {
                    let mut scenes = app.lock();
                    if conns.load(Ordering::Relaxed) > 0 {
                        return false;
                    }
                    scenes.remove(&key);
                    app.metrics
                        .scenes
                        .set(i64::try_from(scenes.len()).unwrap_or(i64::MAX));
                    true
                }
            };
            scene.run(rx, idle, unload).await;
            let mut scenes = app.lock();
            if scenes.get(&key).is_some_and(|h| h.tx.is_closed()) {
                scenes.remove(&key);
            }
            app.metrics
                .scenes
                .set(i64::try_from(scenes.len()).unwrap_or(i64::MAX));
        });
        tracing::info!(scene = name, "scene opened");
        Ok(handle)
    }

    async fn open_log(&self, name: &str) -> Result<(crate::Replica, Box<dyn SceneLog>), OpenError> {
        match &self.config.storage {
            Storage::Memory => {
                let mut r = crate::Replica::with_limits(self.config.limits.engine.clone());
                r.set_horizon(self.config.horizon);
                Ok((r, Box::new(MemoryLog::default())))
            }
            Storage::Dir(dir) => {
                let dir = dir.join(name);
                let options = DurableOptions {
                    journal: group_commit(64 << 20),
                    snapshot_every: Some(self.config.snapshot_every.max(1)),
                    keep_snapshots: 2,
                };
                let name = name.to_owned();
                let opened = tokio::task::spawn_blocking(move || LocalLog::open(&dir, options))
                    .await
                    .map_err(|e| OpenError::Storage(e.to_string()))?;
                let (log, replica, report) =
                    opened.map_err(|e| OpenError::Storage(e.to_string()))?;
                tracing::info!(
                    scene = %name,
                    snapshot = ?report.snapshot.as_ref().map(|s| s.1),
                    replayed = report.replayed,
                    damaged = report.damage.len(),
                    "scene recovered"
                );
                Ok((replica, Box::new(log)))
            }
        }
    }

    /// Stops every scene (drain, commit, snapshot, close 1001) and waits for them.
    async fn shutdown_scenes(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        let handles: Vec<SceneHandle> = self.lock().values().cloned().collect();
        let mut waits = Vec::new();
        for h in handles {
            let (done, wait) = oneshot::channel();
            if h.tx.send(Cmd::Shutdown { done }).await.is_ok() {
                waits.push(wait);
            }
        }
        for w in waits {
            let _ = w.await;
        }
    }
}

/// Serves until `stopped` turns true, then shuts down gracefully.
pub(crate) async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    mut stopped: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/scenes", get(list_scenes))
        .route("/scenes/{scene}", get(scene_route))
        .with_state(Arc::clone(&state));
    let shut = Arc::clone(&state);
    let graceful = async move {
        while !*stopped.borrow() {
            if stopped.changed().await.is_err() {
                break;
            }
        }
        shut.shutdown_scenes().await;
    };
    // No Nagle: an ack or a broadcast is small and must leave at once (Nagle with
    // the peer's delayed ACK holds it for up to 40 ms).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(graceful)
        .await
    {
        tracing::error!(error = %e, "server error");
    }
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}

async fn list_scenes(State(app): State<Arc<AppState>>) -> Response {
    let mut out: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    if let Storage::Dir(dir) = &app.config.storage
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        for e in entries.flatten() {
            if let Some(name) = e.file_name().to_str()
                && valid_scene_name(name)
                && e.path().is_dir()
            {
                out.insert(
                    name.to_owned(),
                    serde_json::json!({"loaded": false, "connections": 0}),
                );
            }
        }
    }
    for (name, h) in app.lock().iter() {
        out.insert(
            name.clone(),
            serde_json::json!({"loaded": true, "connections": h.conns.load(Ordering::Relaxed)}),
        );
    }
    let list: Vec<serde_json::Value> = out
        .into_iter()
        .map(|(name, mut v)| {
            v["scene"] = serde_json::Value::String(name);
            v
        })
        .collect();
    let body = serde_json::json!({ "scenes": list }).to_string();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn token<'a>(query: &'a HashMap<String, String>, headers: &'a HeaderMap) -> Option<&'a str> {
    query.get("token").map(String::as_str).or_else(|| {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
    })
}

fn refuse(status: StatusCode, why: impl std::fmt::Display) -> Response {
    (status, format!("{why}\n")).into_response()
}

async fn scene_route(
    State(app): State<Arc<AppState>>,
    Path(scene): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    if !valid_scene_name(&scene) {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "invalid scene name {scene:?}: 1 to 128 of A-Z a-z 0-9 . _ -, not starting with ."
            ),
        );
    }
    let access = match &app.config.auth {
        None => Access::Write,
        Some(auth) => match auth.check(token(&query, &headers), &scene) {
            Ok(a) => a,
            Err(e @ AuthError::Forbidden(_)) => {
                app.metrics.close("forbidden");
                return refuse(StatusCode::FORBIDDEN, e);
            }
            Err(e) => {
                app.metrics.close("unauthorized");
                return refuse(StatusCode::UNAUTHORIZED, e);
            }
        },
    };
    let Ok(ws) = ws else {
        return read_scene(&app, &scene, &query).await;
    };
    let opts = match conn::options(&query, access) {
        Ok(o) => o,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    let limits = &app.config.limits;
    if app.conns.fetch_add(1, Ordering::Relaxed) >= limits.max_conns {
        app.release_conn();
        app.metrics.close("too_many_connections");
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("too many connections (limit {})", limits.max_conns),
        );
    }
    let handle = match app.scene(&scene).await {
        Ok(h) => h,
        Err(e) => {
            app.release_conn();
            return refuse(StatusCode::SERVICE_UNAVAILABLE, e);
        }
    };
    if handle.conns.fetch_add(1, Ordering::Relaxed) >= limits.max_conns_per_scene {
        handle.conns.fetch_sub(1, Ordering::Relaxed);
        app.release_conn();
        app.metrics.close("scene_full");
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many connections to scene {scene:?} (limit {})",
                limits.max_conns_per_scene
            ),
        );
    }
    let max = limits.max_frame_bytes;
    // Small buffers: most connections are idle or receive only; a large frame grows
    // the read buffer as it needs (tungstenite's default is 128 KiB per connection).
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(4 << 10)
        .write_buffer_size(16 << 10)
        .on_upgrade(move |socket| conn::serve(socket, app, scene, opts, handle))
}

async fn read_scene(app: &Arc<AppState>, scene: &str, query: &HashMap<String, String>) -> Response {
    let snapshot = match query.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("snapshot") => true,
        Some(other) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("unknown format {other:?} (json or snapshot)"),
            );
        }
    };
    if let Storage::Dir(dir) = &app.config.storage
        && !dir.join(scene).is_dir()
        && !app.lock().contains_key(scene)
    {
        return refuse(StatusCode::NOT_FOUND, format!("no scene {scene:?}"));
    }
    let handle = match app.scene(scene).await {
        Ok(h) => h,
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    let (reply, wait) = oneshot::channel();
    if handle.tx.send(Cmd::Read { snapshot, reply }).await.is_err() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "the scene stopped");
    }
    match wait.await {
        Ok(ReadReply::Json(s)) => ([(header::CONTENT_TYPE, "application/json")], s).into_response(),
        Ok(ReadReply::Snapshot(b)) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], b).into_response()
        }
        Err(_) => refuse(StatusCode::SERVICE_UNAVAILABLE, "the scene stopped"),
    }
}
