//! What a resource says about every span it holds: the deployment environment, and its
//! attributes (`service.name`, `service.version`, SDK names) as metadata of each trace.

use feedloop_core::trace::Environment;
use serde_json::{Map, Value};

use super::attributes::Attributes;

/// The resource of a group of spans, read once.
#[derive(Debug, Default, Clone)]
pub struct ResourceFacts {
    pub environment: Option<Environment>,
    /// Every resource attribute, except an environment name that became [`Self::environment`].
    pub metadata: Map<String, Value>,
}

impl ResourceFacts {
    pub fn read(attributes: &Attributes) -> Self {
        let named =
            attributes.first_text(&["deployment.environment.name", "deployment.environment"]);
        let environment = named.as_deref().and_then(environment);
        let mut metadata = if environment.is_some() {
            attributes.unread()
        } else {
            attributes.all_except(&[], &[])
        };
        // An environment feedloop has no name for stays findable as metadata.
        metadata.retain(|_, value| !value.is_null());
        Self {
            environment,
            metadata,
        }
    }
}

/// feedloop's environment for a deployment name: its own four names and the usual long forms.
pub fn environment(name: &str) -> Option<Environment> {
    match name.trim().to_ascii_lowercase().as_str() {
        "prod" | "production" | "prd" | "live" => Some(Environment::Prod),
        "staging" | "stage" | "stg" | "preprod" | "pre-production" => Some(Environment::Staging),
        "test" | "testing" | "qa" | "ci" => Some(Environment::Test),
        "dev" | "development" | "local" => Some(Environment::Dev),
        _ => None,
    }
}
