//! Which application an INVITE reaches: by number (the Request-URI user),
//! then by SIP domain (the Request-URI host), then the default application.
//! Installing a new version of an application affects the next call only;
//! calls in progress hold their own `Arc<Application>`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::app::Application;

/// How an application is reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppRoutes {
    pub domains: Vec<String>,
    pub numbers: Vec<String>,
}

#[derive(Default)]
struct State {
    apps: HashMap<String, Arc<Application>>,
    routes: HashMap<String, AppRoutes>,
    /// Lower-cased domain → app id.
    by_domain: HashMap<String, String>,
    /// Number → app id.
    by_number: HashMap<String, String>,
    default: Option<String>,
}

/// The live applications. Cheap reads; writes swap whole entries.
#[derive(Default)]
pub struct AppRegistry {
    state: RwLock<State>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RouteConflict {
    #[error("domain {domain:?} already reaches application {app}")]
    Domain { domain: String, app: String },
    #[error("number {number:?} already reaches application {app}")]
    Number { number: String, app: String },
}

impl AppRegistry {
    /// Installs (or replaces) `app` with the ways to reach it. Fails, changing
    /// nothing, if a domain or number already belongs to another application.
    pub fn install(&self, app: Application, routes: AppRoutes) -> Result<(), RouteConflict> {
        let mut state = self.write();
        let id = app.id.clone();
        for domain in &routes.domains {
            if let Some(owner) = state.by_domain.get(&domain.to_ascii_lowercase()) {
                if *owner != id {
                    return Err(RouteConflict::Domain {
                        domain: domain.clone(),
                        app: owner.clone(),
                    });
                }
            }
        }
        for number in &routes.numbers {
            if let Some(owner) = state.by_number.get(number) {
                if *owner != id {
                    return Err(RouteConflict::Number {
                        number: number.clone(),
                        app: owner.clone(),
                    });
                }
            }
        }
        state.by_domain.retain(|_, owner| *owner != id);
        state.by_number.retain(|_, owner| *owner != id);
        for domain in &routes.domains {
            state
                .by_domain
                .insert(domain.to_ascii_lowercase(), id.clone());
        }
        for number in &routes.numbers {
            state.by_number.insert(number.clone(), id.clone());
        }
        state.routes.insert(id.clone(), routes);
        state.apps.insert(id, Arc::new(app));
        Ok(())
    }

    /// Removes an application; calls in progress keep running.
    pub fn remove(&self, id: &str) {
        let mut state = self.write();
        state.apps.remove(id);
        state.routes.remove(id);
        state.by_domain.retain(|_, owner| owner != id);
        state.by_number.retain(|_, owner| owner != id);
        if state.default.as_deref() == Some(id) {
            state.default = None;
        }
    }

    /// The application that gets calls no number or domain claims.
    pub fn set_default(&self, id: Option<&str>) {
        self.write().default = id.map(str::to_string);
    }

    pub fn default_app(&self) -> Option<String> {
        self.read().default.clone()
    }

    pub fn get(&self, id: &str) -> Option<Arc<Application>> {
        self.read().apps.get(id).cloned()
    }

    pub fn routes(&self, id: &str) -> Option<AppRoutes> {
        self.read().routes.get(id).cloned()
    }

    /// Every application, by id.
    pub fn all(&self) -> Vec<Arc<Application>> {
        let mut apps: Vec<_> = self.read().apps.values().cloned().collect();
        apps.sort_by(|a, b| a.id.cmp(&b.id));
        apps
    }

    /// The application a call to `user@host` reaches.
    pub fn resolve(&self, host: &str, user: &str) -> Option<Arc<Application>> {
        let state = self.read();
        let id = state
            .by_number
            .get(user)
            .or_else(|| state.by_domain.get(&host.to_ascii_lowercase()))
            .or(state.default.as_ref())?;
        state.apps.get(id).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(id: &str) -> Application {
        Application::from_sources(
            &format!(
                "name = \"{id}\"\n[[rules]]\nname = \"all\"\npattern = \".*\"\nscenario = \"s\"\n"
            ),
            vec![(
                "s".into(),
                "export default { async onCall(call) {} };".into(),
            )],
        )
        .unwrap()
    }

    fn routes(domains: &[&str], numbers: &[&str]) -> AppRoutes {
        AppRoutes {
            domains: domains.iter().map(|s| s.to_string()).collect(),
            numbers: numbers.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn numbers_then_domains_then_the_default() {
        let registry = AppRegistry::default();
        registry
            .install(app("a"), routes(&["a.example.com"], &["+15550001"]))
            .unwrap();
        registry
            .install(app("b"), routes(&["b.example.com"], &[]))
            .unwrap();
        assert_eq!(
            registry.resolve("b.example.com", "+15550001").unwrap().id,
            "a",
            "a number wins over a domain"
        );
        assert_eq!(registry.resolve("B.Example.com", "x").unwrap().id, "b");
        assert!(registry.resolve("other", "x").is_none());
        registry.set_default(Some("b"));
        assert_eq!(registry.resolve("other", "x").unwrap().id, "b");
        registry.remove("b");
        assert!(registry.resolve("b.example.com", "x").is_none());
        assert!(registry.default_app().is_none());
    }

    #[test]
    fn routes_cannot_be_stolen_and_reinstalling_keeps_old_arcs_alive() {
        let registry = AppRegistry::default();
        registry
            .install(app("a"), routes(&["x.com"], &["1"]))
            .unwrap();
        assert!(matches!(
            registry.install(app("b"), routes(&["X.com"], &[])),
            Err(RouteConflict::Domain { .. })
        ));
        assert!(matches!(
            registry.install(app("b"), routes(&[], &["1"])),
            Err(RouteConflict::Number { .. })
        ));
        assert!(
            registry.get("b").is_none(),
            "a refused install changes nothing"
        );
        let old = registry.get("a").unwrap();
        registry.install(app("a"), routes(&["y.com"], &[])).unwrap();
        assert!(registry.resolve("x.com", "z").is_none());
        assert_eq!(registry.resolve("y.com", "z").unwrap().id, "a");
        assert!(!Arc::ptr_eq(&old, &registry.get("a").unwrap()));
    }
}
