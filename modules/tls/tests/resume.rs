//! Session resumption: tickets and the session cache resume, never under another server name,
//! and a listener rebuilt by a reload keeps resuming the sessions of the one it replaces.

mod support;

use std::sync::Arc;

use bext_tls::rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use bext_tls::rustls::pki_types::ServerName;
use bext_tls::rustls::{self, ClientConfig, HandshakeKind, NamedGroup};
use bext_tls::Settings;
use support::{handshake, tls, with_fresh_sessions, Leaf, Pki};

const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// A block whose one certificate covers both names the tests use.
fn block(pki: &Pki) -> bext_ir::Tls {
    let (cert, key) = pki.leaf(
        "both",
        Leaf {
            names: &["a.example", "b.example"],
            ..Leaf::default()
        },
    );
    tls(&[(None, &cert, &key)])
}

fn kind(listener: &bext_tls::Listener, client: &Arc<ClientConfig>, sni: &str) -> HandshakeKind {
    let (server, client) = handshake(listener.server_config(), client, sni).expect(sni);
    assert_eq!(server.handshake_kind(), client.handshake_kind());
    server.handshake_kind().expect("handshake done")
}

#[test]
fn tickets_resume() {
    let pki = Pki::new("tickets");
    let listener = bext_tls::load(&block(&pki)).expect("listener");
    for versions in [TLS13, TLS12] {
        let client = with_fresh_sessions(pki.client_for(versions));
        assert_eq!(kind(&listener, &client, "a.example"), HandshakeKind::Full);
        assert_eq!(
            kind(&listener, &client, "a.example"),
            HandshakeKind::Resumed
        );
        assert_eq!(
            kind(&listener, &client, "a.example"),
            HandshakeKind::Resumed
        );
    }
}

#[test]
fn session_cache_resumes_without_tickets() {
    let pki = Pki::new("cache");
    let settings = Settings {
        tickets: false,
        ..Settings::default()
    };
    let listener = bext_tls::load_with(&block(&pki), &settings, None).expect("listener");
    assert!(listener.resumption().tickets.is_none());
    for versions in [TLS13, TLS12] {
        let client = with_fresh_sessions(pki.client_for(versions));
        assert_eq!(kind(&listener, &client, "a.example"), HandshakeKind::Full);
        assert_eq!(
            kind(&listener, &client, "a.example"),
            HandshakeKind::Resumed
        );
    }
}

/// A client session store that files every session under one name, so the client offers a
/// session of `a.example` when it connects to `b.example`: what an attacker would try.
#[derive(Debug)]
struct OneName(ClientSessionMemoryCache);

fn a_example() -> ServerName<'static> {
    ServerName::try_from("a.example").expect("name")
}

impl ClientSessionStore for OneName {
    fn set_kx_hint(&self, _: ServerName<'static>, group: NamedGroup) {
        self.0.set_kx_hint(a_example(), group)
    }
    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        self.0.kx_hint(&a_example())
    }
    fn set_tls12_session(&self, _: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.0.set_tls12_session(a_example(), value)
    }
    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.0.tls12_session(&a_example())
    }
    fn remove_tls12_session(&self, _: &ServerName<'static>) {
        self.0.remove_tls12_session(&a_example())
    }
    fn insert_tls13_ticket(&self, _: ServerName<'static>, value: Tls13ClientSessionValue) {
        self.0.insert_tls13_ticket(a_example(), value)
    }
    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        self.0.take_tls13_ticket(&a_example())
    }
}

#[test]
fn never_resumes_under_another_server_name() {
    let pki = Pki::new("other-name");
    for tickets in [true, false] {
        let settings = Settings {
            tickets,
            ..Settings::default()
        };
        let listener = bext_tls::load_with(&block(&pki), &settings, None).expect("listener");
        for versions in [TLS13, TLS12] {
            let mut config = pki.client_for(versions);
            config.resumption = rustls::client::Resumption::store(Arc::new(OneName(
                ClientSessionMemoryCache::new(64),
            )));
            let client = Arc::new(config);
            let case = format!("tickets {tickets}, {versions:?}");
            assert_eq!(
                kind(&listener, &client, "a.example"),
                HandshakeKind::Full,
                "{case}"
            );
            // The control: the same store resumes under the same name...
            assert_eq!(
                kind(&listener, &client, "a.example"),
                HandshakeKind::Resumed,
                "{case}"
            );
            // ...and offers that session under `b.example`, which the server must refuse.
            assert_eq!(
                kind(&listener, &client, "b.example"),
                HandshakeKind::Full,
                "{case}"
            );
        }
    }
}

#[test]
fn reload_keeps_ticket_keys_and_sessions() {
    let pki = Pki::new("reload");
    let block = block(&pki);
    for tickets in [true, false] {
        let settings = Settings {
            tickets,
            ..Settings::default()
        };
        let before = bext_tls::load_with(&block, &settings, None).expect("listener");
        for versions in [TLS13, TLS12] {
            let case = format!("tickets {tickets}, {versions:?}");
            let client = with_fresh_sessions(pki.client_for(versions));
            assert_eq!(
                kind(&before, &client, "a.example"),
                HandshakeKind::Full,
                "{case}"
            );

            // A reload builds a new listener from the files, carrying the resumption state.
            let after = bext_tls::load_with(&block, &settings, Some(before.resumption()))
                .expect("reloaded");
            assert!(!Arc::ptr_eq(before.server_config(), after.server_config()));
            assert_eq!(
                kind(&after, &client, "a.example"),
                HandshakeKind::Resumed,
                "{case}"
            );

            // Without the carried state, the session is unknown: a full handshake.
            let fresh = bext_tls::load_with(&block, &settings, None).expect("fresh");
            let client = with_fresh_sessions(pki.client_for(versions));
            kind(&before, &client, "a.example");
            assert_eq!(
                kind(&fresh, &client, "a.example"),
                HandshakeKind::Full,
                "{case}"
            );
        }
    }
}

#[test]
fn carried_state_follows_the_new_settings() {
    let pki = Pki::new("carry");
    let block = block(&pki);
    let before = bext_tls::load(&block).expect("listener");
    let keys = before.resumption().tickets.clone().expect("tickets on");
    let same = bext_tls::load_with(&block, &Settings::default(), Some(before.resumption()))
        .expect("same settings");
    assert!(keys.same_keys(same.resumption().tickets.as_ref().expect("tickets")));
    let off = Settings {
        tickets: false,
        session_cache: 10,
        ..Settings::default()
    };
    let after = bext_tls::load_with(&block, &off, Some(before.resumption())).expect("off");
    assert!(after.resumption().tickets.is_none());
    assert_eq!(after.resumption().capacity, 10);
    // Turned on again later, the tickets get fresh keys.
    let again = bext_tls::load_with(&block, &Settings::default(), Some(after.resumption()))
        .expect("on again");
    assert!(!keys.same_keys(again.resumption().tickets.as_ref().expect("tickets")));
}
