//! The live page: the prometheus sink's listener serves the report page at `/`, the
//! inventory as it stands at `/api/inventory` (the page's JSON), and every edge update as a
//! server-sent event at `/api/updates` (the stdout sink's update line, with its destination's
//! domain).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use futures_util::Stream;
use tokio::sync::broadcast;

use super::{Page, domain_for, page_with};
use crate::inventory::{Collected, Update};
use crate::output::UpdateDoc;

/// Updates a slow page may lag behind before it misses some (it reloads the inventory).
const BACKLOG: usize = 4096;

pub struct Live {
    inventory: Mutex<Collected>,
    updates: broadcast::Sender<Arc<str>>,
}

impl Live {
    pub fn new() -> Arc<Live> {
        Arc::new(Live {
            inventory: Mutex::new(Collected::default()),
            updates: broadcast::channel(BACKLOG).0,
        })
    }

    /// Takes in a batch of the stage's updates and tells the open pages.
    pub fn apply(&self, updates: &[Update]) {
        let mut inventory = self.inventory.lock().unwrap_or_else(|p| p.into_inner());
        for u in updates {
            inventory.apply(u);
            if self.updates.receiver_count() == 0 {
                continue;
            }
            let mut doc = serde_json::to_value(UpdateDoc::of(u)).unwrap_or_default();
            doc["domain"] = domain_for(u.destination.name_among(&u.place.names)).into();
            let _ = self.updates.send(doc.to_string().into());
        }
    }

    fn inventory(&self) -> String {
        let inventory = self.inventory.lock().unwrap_or_else(|p| p.into_inner());
        let destinations: Vec<_> = inventory.destinations().collect();
        let mut page = Page::new(&destinations, None);
        page.live = true;
        serde_json::to_string(&page).unwrap_or_default()
    }

    fn stream(&self) -> impl Stream<Item = Result<Event, Infallible>> + use<> {
        let rx = self.updates.subscribe();
        futures_util::stream::unfold(rx, |mut rx| async move {
            let event = match rx.recv().await {
                Ok(doc) => Event::default().data(doc.as_ref()),
                // Behind: say so, and the page reloads the inventory.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    Event::default().event("reload").data("")
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((Ok(event), rx))
        })
    }

    /// `/`, `/api/inventory` and `/api/updates`.
    pub fn router(self: &Arc<Self>) -> Router {
        let page = Html(page_with(
            r#"{"live":true,"workloads":[],"destinations":[],"edges":[]}"#,
        ));
        let inventory = self.clone();
        let updates = self.clone();
        Router::new()
            .route("/", get(move || async move { page.clone() }))
            .route(
                "/api/inventory",
                get(move || async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        inventory.inventory(),
                    )
                        .into_response()
                }),
            )
            .route(
                "/api/updates",
                get(move || async move {
                    Sse::new(updates.stream())
                        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
                }),
            )
    }
}
