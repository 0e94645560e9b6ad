//! Domain types shared by every aisle crate.
//!
//! External ids (what a shop calls its users and products) are strings; inside aisle every
//! user and item gets a dense integer id ([`UserId`], [`ItemId`]) so that models index plain
//! arrays. The store owns the mapping and keeps it stable across restarts.
//!
//! This crate depends on nothing internal and knows nothing about storage or transport; its
//! one piece of I/O is [`fs::write_atomic`], the durable file replacement every crate uses.

mod event;
pub mod fs;
mod ids;
mod impression;
mod item;

pub use event::{Event, EventKind, EventPayload, ParseKindError, RawEvent};
pub use ids::{ItemId, SessionId, UserId};
pub use impression::{Impression, ShownItem, impression_label, parse_impression_label};
pub use item::{Item, User};
